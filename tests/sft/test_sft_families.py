"""SFT warm start for the other families (Gemma 3, Idefics3, Qwen3-VL): examples end with the family's
end-of-turn token, image tokens are counted against the processor, mixed batches (with and without an image)
score like their parts, and a few SFT steps run and save a policy that reloads as the family."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mssr.models import build_tiny_policy, load_policy
from mssr.sft import SFTConfig
from mssr.sft import trainer as sft_trainer
from mssr.sft.data import collate, encode_examples, end_of_turn_token, pad_token_id, response_nll

FAMILIES = ("gemma3", "idefics3", "qwen3_vl")
END = {"gemma3": "<end_of_turn>", "idefics3": "<end_of_utterance>", "qwen3_vl": "<|im_end|>"}
IMAGE_TOKEN = {"gemma3": "<image_soft_token>", "idefics3": "<image>", "qwen3_vl": "<|image_pad|>"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from mssr.data.builtin import generate_dataset

    out = tmp_path_factory.mktemp("sftdata")
    generate_dataset(out, n_train=12, n_val=4, n_test=0, seed=5)
    return out


@pytest.fixture(scope="module")
def records(data_dir):
    from mssr.data import load_records

    return load_records(data_dir, "train")


@pytest.mark.parametrize("name", FAMILIES)
def test_examples_batches_and_loss(name, records):
    corpus = [r.question for r in records] + [r.extra["solution"] for r in records]
    policy = build_tiny_policy(f"{name}-tiny", tokenizer_corpus=corpus, seed=0)
    tok = policy.tokenizer
    assert end_of_turn_token(policy) == END[name]
    text_only = dataclasses.replace(records[2], images=[])
    exs = encode_examples(policy, [records[0], records[1], text_only], None)
    for e, r in zip(exs, [records[0], records[1], text_only]):
        assert tok.decode(e.input_ids[e.n_prompt :]) == r.extra["solution"] + END[name]
        image_tokens = e.input_ids[: e.n_prompt].count(tok.convert_tokens_to_ids(IMAGE_TOKEN[name]))
        assert image_tokens == 16 * len(r.images)  # a 64x64 image: 16 tokens in every tiny preset
    pad = pad_token_id(policy)
    batch = collate(exs, pad_id=pad)
    model = policy.model.eval()
    with torch.no_grad():
        loss, n = response_nll(model, batch)
        total, count = 0.0, 0
        for e in exs:  # each example alone, unpadded
            single = collate([e], pad_id=pad)
            logits = model(**{k: v for k, v in single.items() if k != "labels"}).logits[0]
            logp = torch.log_softmax(logits.double(), -1)
            for t in range(e.n_prompt, len(e.input_ids)):
                total -= float(logp[t - 1, e.input_ids[t]])
                count += 1
    assert n == count
    assert math.isclose(float(loss), total / count, rel_tol=1e-4)


@pytest.mark.parametrize("name", ["gemma3", "idefics3"])
def test_a_few_sft_steps_run_and_reload(name, data_dir, tmp_path):
    cfg = SFTConfig(
        data_dir=str(data_dir),
        preset=f"{name}-tiny",
        max_steps=4,
        batch_size=4,
        lr=3e-3,
        warmup_steps=1,
        eval_every=4,
        n_dev=2,
        stop_accuracy=None,
        instruction=None,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    sft_trainer.train_sft(cfg, tmp_path / "run")
    lines = (tmp_path / "run" / "loss_log.jsonl").read_text().splitlines()
    losses = [float(x.split('"loss": ')[1].split(",")[0]) for x in lines if '"loss": ' in x]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert '"eval"' in lines[-1]  # the sampled dev check ran through the family's engine
    policy = load_policy(tmp_path / "run" / "policy")
    assert policy.model.config.model_type == name
