"""bench/scale_check.py: the configs it builds at full size match ``mssr.models.shapes``, the rollout never
samples ids the tokenizer cannot decode, and a CPU run of the shrunken 3B shape prints and writes finite,
positive numbers next to the memory plan's estimate."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "scale_check.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("scale_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _ids() -> dict[str, int]:
    from mssr.models.tokenizer import SPECIAL_TOKENS

    return {t: i for i, t in enumerate(SPECIAL_TOKENS)}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # distinct tensors: tied embeddings once


@pytest.mark.parametrize("shape", ["qwen2.5-vl-3b", "qwen2.5-vl-7b"])
def test_full_size_config_has_the_real_parameter_count(bench, shape):
    from mssr.models.shapes import build_meta_model, shape_config

    real = shape_config(bench.REAL_SHAPES[shape])
    ours = bench.model_config(shape, token_ids=_ids())
    assert ours.get_text_config().vocab_size == real.get_text_config().vocab_size
    assert _count(build_meta_model(ours)) == _count(build_meta_model(real))
    assert ours.image_token_id == _ids()["<|image_pad|>"]  # the tokenizer's ids, not 151655

    small = bench.model_config(shape, token_ids=_ids(), vocab_size=757, shrink=True)
    tc, vc = small.get_text_config(), small.vision_config
    assert (tc.num_hidden_layers, tc.hidden_size, tc.vocab_size) == (2, 128, 757)
    assert (vc.depth, vc.patch_size, vc.spatial_merge_size, vc.out_hidden_size) == (2, 14, 2, 128)
    assert sum(tc.rope_parameters["mrope_section"]) * 2 == tc.hidden_size // tc.num_attention_heads
    assert small.tie_word_embeddings == real.tie_word_embeddings
    assert _count(build_meta_model(small)) < 2_000_000


def test_real_vocab_never_samples_undecodable_ids(bench):
    """The shrunken shape with the real 151936-row vocabulary and the ~760-token tokenizer: the LM head's
    unknown rows are masked, so sampling stays inside the tokenizer and log-probs match the sampler's."""
    from PIL import Image

    from mssr.data import Record
    from mssr.rollout.engine import HFRolloutEngine
    from mssr.rollout.logprobs import compute_logprobs
    from mssr.rollout.prompting import records_to_prompts

    policy = bench.build_policy(
        "qwen2.5-vl-3b",
        shrink=True,
        keep_vocab=True,
        image_size=56,
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    n_tok = len(policy.tokenizer)
    assert policy.model.get_output_embeddings().out_features == 151936 > n_tok
    img = Image.new("RGB", (56, 56), (200, 30, 30))
    recs = [Record(str(i), "How many?", [img], "1", "text") for i in range(2)]
    prompts = records_to_prompts(recs, policy.processor)
    engine = HFRolloutEngine(policy.model, policy.processor)
    batch = engine.generate(prompts, n=2, max_new_tokens=12, seed=0, return_logprobs=True)
    real = batch.response_mask > 0
    assert int(real.sum()) > 0
    assert int(batch.response_ids[real].max()) < n_tok
    lp = compute_logprobs(policy.model, batch).logprobs
    assert torch.allclose(lp[real], batch.rollout_logprobs[real], atol=1e-4)
    # the in-place mask keeps the training backward intact
    policy.model.train()
    out = compute_logprobs(policy.model, batch, requires_grad=True).logprobs
    (out * batch.response_mask).sum().backward()
    assert torch.isfinite(policy.model.get_output_embeddings().weight.grad).all()


def test_cpu_run_prints_and_writes_finite_numbers(bench, tmp_path, capsys):
    out = tmp_path / "scale.json"
    rc = bench.main(
        ["--steps", "2", "--threads", "1", "--workdir", str(tmp_path / "work"), "--out", str(out)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "memory plan:" in printed and "(shrunk)" in printed
    for step in (1, 2):
        line = next(ln for ln in printed.splitlines() if ln.startswith(f"step {step}:"))
        for word in ("gen", "update", "tok/s", "peak", "plan"):
            assert word in line

    res = json.loads(out.read_text())
    assert res["shape"] == "qwen2.5-vl-3b" and res["shrunk"] is True
    assert res["model"]["text_layers"] == bench.SHRINK["text_layers"]
    assert res["plan"]["peak_gb"] > 0 and res["plan"]["devices"] == 1
    assert res["plan"]["response_tokens"] == res["args"]["max_new_tokens"]
    assert len(res["steps"]) == 2

    def positive(x):
        return isinstance(x, (int, float)) and math.isfinite(x) and x > 0

    for s in res["steps"]:
        for stage in ("gen", "score", "logprob", "ref", "update", "step"):
            assert positive(s["timing_s"][stage]), (stage, s["timing_s"])
        for key in (
            "generated_tokens",
            "generated_tokens_per_s",
            "trained_tokens",
            "trained_tokens_per_s",
            "trained_seq_tokens_per_s",
            "peak_memory_gb",
            "plan_peak_gb",
            "measured_over_planned",
        ):
            assert positive(s[key]), (key, s[key])
        assert s["rollouts"] == res["args"]["rollouts"]
        assert s["generated_tokens"] <= s["rollouts"] * res["args"]["max_new_tokens"]
        assert s["unknown_ids_sampled"] == 0
        assert s["measured_over_planned"] == pytest.approx(s["peak_memory_gb"] / s["plan_peak_gb"])
    for key in ("step_s_median", "generated_tokens_per_s_median", "trained_tokens_per_s_median"):
        assert positive(res["summary"][key])
