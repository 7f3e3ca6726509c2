"""SFT warm start: response-only loss, determinism, caching, the config loader, the exact-match verdict and the
sampled evaluation on the shared evaluator (its seed stream and its entropy report)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mssr.models import build_tiny_policy, load_policy
from mssr.rewards.extract import last_boxed
from mssr.sft import SFTConfig, ensure_base_policy, run_sft
from mssr.sft import trainer as sft_trainer
from mssr.sft.data import collate, encode_example, response_nll, tokenizer_corpus
from mssr.sft.evaluate import ExactBoxedMatch, evaluate_sampled


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from mssr.data.builtin import generate_dataset

    out = tmp_path_factory.mktemp("sftdata")
    generate_dataset(out, n_train=24, n_val=6, n_test=0, seed=5)
    return out


@pytest.fixture(scope="module")
def records(data_dir):
    from mssr.data import load_records

    return load_records(data_dir, "train")


@pytest.fixture(scope="module")
def policy(records):
    corpus = [r.question for r in records] + [r.extra["solution"] for r in records]
    return build_tiny_policy("tiny", tokenizer_corpus=corpus, seed=0)


def _cfg(ddir, tmp_path, **kw) -> SFTConfig:
    base = dict(
        data_dir=str(ddir),
        max_steps=6,
        batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        eval_every=0,
        n_dev=0,
        stop_accuracy=None,
        instruction=None,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    base.update(kw)
    return SFTConfig(**base)


def _loss_log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "loss_log.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- batch layout and loss


def test_example_layout_and_labels(policy, records):
    rec = records[0]
    ex = encode_example(policy, rec, None)
    tok = policy.tokenizer
    prompt_text = tok.decode(ex.input_ids[: ex.n_prompt])
    assert prompt_text.endswith("<|im_start|>assistant\n")
    assert prompt_text.count("<|image_pad|>") == 16  # 64x64, patch 8, merge 2
    assert tok.decode(ex.input_ids[ex.n_prompt :]) == rec.extra["solution"] + "<|im_end|>"
    assert sum(ex.mm_token_type_ids) == 16 and ex.mm_token_type_ids[ex.n_prompt :] == [0] * (
        len(ex.input_ids) - ex.n_prompt
    )
    other = encode_example(policy, records[1], None)
    batch = collate([ex, other], pad_id=0)
    for i, e in enumerate([ex, other]):
        L = len(e.input_ids)
        row = batch["labels"][i]
        assert (row[: e.n_prompt] == -100).all() and (row[L:] == -100).all()
        assert row[e.n_prompt : L].tolist() == e.input_ids[e.n_prompt :]
        assert batch["attention_mask"][i].sum() == L
    assert batch["pixel_values"].shape[0] == 2 * 64


def test_response_nll_matches_per_token_reference(policy, records):
    exs = [encode_example(policy, r, None) for r in records[:3]]
    batch = collate(exs, pad_id=0)
    with torch.no_grad():
        loss, n = response_nll(policy.model, batch)
        # reference: each example alone, unpadded, summing -log p of every response token
        total, count = 0.0, 0
        for e in exs:
            single = collate([e], pad_id=0)
            logits = policy.model(**{k: v for k, v in single.items() if k != "labels"}).logits[0]
            logp = torch.log_softmax(logits.double(), -1)
            for t in range(e.n_prompt, len(e.input_ids)):
                total -= float(logp[t - 1, e.input_ids[t]])
                count += 1
    assert n == count == sum(len(e.input_ids) - e.n_prompt for e in exs)
    assert math.isclose(float(loss), total / count, rel_tol=1e-4)


def test_missing_solution_is_a_clear_error(policy, records):
    import copy

    bad = copy.deepcopy(records[0])
    bad.extra.pop("solution")
    with pytest.raises(ValueError, match=bad.id):
        encode_example(policy, bad, None)


# ----------------------------------------------------------------------------------------- verifier


@pytest.mark.parametrize(
    ("text", "answer", "ok"),
    [
        ("<think>3 + 2 = 5.</think> \\boxed{5}", "5", True),
        ("\\boxed{5}  \n", "5", True),
        ("\\boxed{4} then \\boxed{5}", "5", True),  # the last box counts
        ("\\boxed{5} and more", "5", False),  # trailing text after the final answer
        ("\\boxed{ Purple }", "purple", True),
        ("\\boxed{55}", "5", False),
        ("the answer is 5", "5", False),
        ("\\boxed{5", "5", False),  # unbalanced
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True),  # nested braces
        ("\\boxed{5}<|im_start|>", "5", False),  # a special token after the answer is trailing text
        ("\\boxed{5}.", "5", False),  # stricter than the RL reward: no full stop after the box
        ("\\boxed{5.0}", "5", False),  # string equality, not value equality
        ("\\boxed 5", "5", False),  # near-misses the shared extractor reads: not a braced \\boxed{}
        ("\\boxed {5}", "5", False),
        ("\\fbox{5}", "5", False),
        ("\\boxed{5} \\boxed 4", "5", False),  # the braced box is not the last answer
        ("\\boxed 4 \\boxed{5}", "5", True),
    ],
)
def test_exact_boxed_match(text, answer, ok):
    assert ExactBoxedMatch()(text, {"answer": answer}) == (1.0 if ok else 0.0)


def test_last_boxed_position():
    # the shared extractor the verdict uses: content, start, and the offset just past the box
    assert last_boxed("a \\boxed{x} b") == ("x", 2, 11)
    assert last_boxed("no box") is None


# -------------------------------------------------------------------------------- training and cache


def test_short_run_lowers_loss_and_is_deterministic(data_dir, records, tmp_path):
    a = run_sft(_cfg(data_dir, tmp_path, out=str(tmp_path / "a")))
    b = run_sft(_cfg(data_dir, tmp_path, out=str(tmp_path / "b")))
    c = run_sft(_cfg(data_dir, tmp_path, out=str(tmp_path / "c"), seed=1))
    wa, wb, wc = (load_policy(d / "policy").model.state_dict() for d in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # same config -> same weights
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)  # another data order -> other weights

    # the trained policy fits the training solutions better than the untrained one built the same way
    cfg = _cfg(data_dir, tmp_path)
    start = build_tiny_policy("tiny", tokenizer_corpus=tokenizer_corpus(cfg, records), seed=cfg.init_seed)
    trained = load_policy(a / "policy")
    batch = collate([encode_example(start, r, None) for r in records], pad_id=0)
    with torch.no_grad():
        before = float(response_nll(start.model, batch)[0])
        after = float(response_nll(trained.model, batch)[0])
    assert after < before - 1.0, (before, after)

    log = _loss_log(a)
    assert [r["step"] for r in log] == list(range(1, 7))
    assert log[-1]["loss"] < log[0]["loss"]
    metrics = json.loads((a / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["n_train"] == len(records)
    env = metrics["environment"]  # what the weights depend on beyond the config (mssr.environment)
    assert env["torch"] == torch.__version__
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_stop_step_is_the_same_run_stopped_part_way(data_dir, tmp_path):
    """``stop_step=k`` of a ``max_steps=n`` schedule trains exactly the first k steps of the n-step run (same
    learning rates, same batches), not a k-step schedule; the cache key says which (warm-up: 2 steps)."""
    full = _loss_log(run_sft(_cfg(data_dir, tmp_path, out=str(tmp_path / "full"))))
    part_dir = run_sft(_cfg(data_dir, tmp_path, out=str(tmp_path / "part"), stop_step=4))
    part = _loss_log(part_dir)
    short = _loss_log(run_sft(_cfg(data_dir, tmp_path, out=str(tmp_path / "short"), max_steps=4)))
    assert [r["step"] for r in part] == [1, 2, 3, 4]
    assert [(r["lr"], r["loss"]) for r in part] == [(r["lr"], r["loss"]) for r in full[:4]]
    assert part[-1]["lr"] > short[-1]["lr"]  # a 4-step schedule has decayed further by its step 4
    metrics = json.loads((part_dir / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["stopped_early"]
    keys = {_cfg(data_dir, tmp_path, **kw).cache_key() for kw in ({}, {"stop_step": 3}, {"stop_step": 4})}
    assert len(keys) == 3
    assert "stop_step" not in _cfg(data_dir, tmp_path).key_dict()  # keys of unstopped runs are unchanged


def test_cache_is_reused(data_dir, tmp_path, monkeypatch):
    cfg = _cfg(data_dir, tmp_path, max_steps=2)
    first = run_sft(cfg)
    assert first.parent == tmp_path / "cache" / "sft" and first.name.startswith("tiny-")
    stamp = (first / "metrics.json").stat().st_mtime_ns

    def fail(*a, **k):
        raise AssertionError("retrained although the run is cached")

    monkeypatch.setattr(sft_trainer, "train_sft", fail)
    assert run_sft(_cfg(data_dir, tmp_path, max_steps=2, threads=1, progress=True)) == first
    assert ensure_base_policy(cfg) == first / "policy"
    assert (first / "metrics.json").stat().st_mtime_ns == stamp
    assert not list(first.parent.glob(".tmp-*"))


def test_cache_key_covers_what_trains_and_nothing_else(data_dir, tmp_path):
    base = _cfg(data_dir, tmp_path)
    same = [
        _cfg(data_dir, tmp_path, threads=2),
        _cfg(data_dir, tmp_path, progress=True),
        _cfg(data_dir, tmp_path, cache_dir="/elsewhere"),
    ]
    other = [
        _cfg(data_dir, tmp_path, lr=1e-3),
        _cfg(data_dir, tmp_path, preset="small"),
        _cfg(data_dir, tmp_path, instruction="Think."),
        _cfg(data_dir, tmp_path, max_steps=7),
        _cfg(data_dir, tmp_path, data_dir=None),
        _cfg(data_dir, tmp_path, data_dir=None, data={"seed": 2}),
    ]
    assert all(c.cache_key() == base.cache_key() for c in same)
    keys = {c.cache_key() for c in other} | {base.cache_key()}
    assert len(keys) == len(other) + 1


# --------------------------------------------------------------------------------- sampled evaluation


def _spy_engine(monkeypatch) -> list[tuple[int, dict, object]]:
    """Record every call of the rollout engine: (number of prompts, keyword arguments, the batch)."""
    from mssr.rollout.engine import HFRolloutEngine

    calls = []
    orig = HFRolloutEngine.generate

    def spy(self, prompts, **kw):
        batch = orig(self, prompts, **kw)
        calls.append((len(prompts), kw, batch))
        return batch

    monkeypatch.setattr(HFRolloutEngine, "generate", spy)
    return calls


def test_evaluate_sampled_entropies_match_teacher_forcing(policy, records, monkeypatch):
    """Re-score the sampled responses with a teacher-forced forward: the reported sampled-token and
    full-vocabulary entropies must equal the ones recomputed from those logits (vision tokens masked)."""
    recs = records[:4]
    torch.manual_seed(0)
    got = evaluate_sampled(policy, recs, instruction=None, seed=11, max_new_tokens=12, batch_size=4)
    assert got["n"] == 4 and 0.0 <= got["accuracy"] <= 1.0

    # regenerate the same samples (same seed path) and recompute entropies independently
    calls = _spy_engine(monkeypatch)
    again = evaluate_sampled(policy, recs, instruction=None, seed=11, max_new_tokens=12, batch_size=4)
    assert again == got  # seeded: the same samples and numbers

    ((_, _, batch),) = calls
    seqs = batch.input_ids
    P = seqs.shape[1] - batch.response_ids.shape[1]
    tok_ = policy.tokenizer
    eos = {tok_.convert_tokens_to_ids("<|im_end|>"), tok_.convert_tokens_to_ids("<|endoftext|>")}
    mask_ids = list(policy.vision_token_ids())
    attn = torch.cat([batch.attention_mask[:, :P], torch.ones_like(seqs[:, P:])], dim=1)
    pixel_values, grid = batch.prompts.gather(batch.prompt_slot.tolist())
    with torch.no_grad():
        logits = policy.model(
            input_ids=seqs,
            attention_mask=attn,
            mm_token_type_ids=batch.mm_token_type_ids,
            pixel_values=pixel_values,
            image_grid_thw=grid,
        ).logits
    logits = logits.double()
    logits[..., mask_ids] = -math.inf
    hs = hf = 0.0
    n = 0
    for i in range(seqs.shape[0]):
        for t in range(P, seqs.shape[1]):
            logp = torch.log_softmax(logits[i, t - 1], -1)
            p = logp.exp()
            tok = int(seqs[i, t])
            hs += float(-p[tok] * logp[tok])
            hf += float(-(p[p > 0] * logp[p > 0]).sum())
            n += 1
            if tok in eos:
                break
    assert math.isclose(got["sampled_token_entropy"], hs / n, rel_tol=1e-3, abs_tol=1e-5)
    assert math.isclose(got["full_entropy"], hf / n, rel_tol=1e-3, abs_tol=1e-5)
    assert math.isclose(got["mean_response_tokens"], n / 4)


def test_evaluation_seeds_each_chunk_from_one_stream(policy, records, monkeypatch):
    """The sampling stream the cached bases were trained with: ``batch_size`` records per engine call, each
    call seeded by the next draw of ``Generator().manual_seed(seed)``; T = 1, top-k and top-p off."""
    calls = _spy_engine(monkeypatch)
    evaluate_sampled(policy, records[:5], instruction=None, seed=7, max_new_tokens=4, batch_size=2)
    gen = torch.Generator().manual_seed(7)
    seeds = [int(torch.randint(0, 2**31 - 1, (1,), generator=gen)) for _ in range(3)]
    assert [n for n, _, _ in calls] == [2, 2, 1]
    assert [kw["seed"] for _, kw, _ in calls] == seeds
    for _, kw, _ in calls:
        assert not kw["greedy"] and kw["temperature"] == 1.0 and kw["top_k"] == 0 and kw["top_p"] == 1.0
        assert kw["n"] == 1 and kw["max_new_tokens"] == 4


def test_verdict_sees_special_tokens_and_needs_an_ended_response(policy, records, monkeypatch):
    """A response is graded on its text with special tokens kept (end token dropped); one that hit the token
    budget counts as wrong even if its last box is right."""
    from mssr.sft import evaluate as ev

    seen = []

    def verdict(response, record):
        seen.append(response)
        return 1.0

    monkeypatch.setattr(ev, "ExactBoxedMatch", lambda: verdict)
    calls = _spy_engine(monkeypatch)
    got = evaluate_sampled(policy, records[:4], instruction=None, seed=3, max_new_tokens=6, batch_size=4)
    ((_, _, batch),) = calls
    tok = policy.tokenizer
    ended = [not bool(t) for t in batch.truncated]
    for r, text in enumerate(seen):
        ids = batch.response_ids[r, : int(batch.response_mask[r].sum())].tolist()
        assert text == tok.decode(ids[:-1] if ended[r] else ids, skip_special_tokens=False)
    assert got["accuracy"] == sum(ended) / 4 == got["ended_rate"]
    formatted = sum(e and "</think>" in t and ev.last_braced_box(t) is not None for e, t in zip(ended, seen))
    assert got["format_rate"] == formatted / 4


def test_batched_encoding_equals_one_by_one(policy, records):
    from mssr.sft.data import encode_examples

    batched = encode_examples(policy, records[:7], None, chunk=3)
    for rec, got in zip(records[:7], batched):
        ref = encode_example(policy, rec, None)
        assert got.input_ids == ref.input_ids and got.n_prompt == ref.n_prompt
        assert got.mm_token_type_ids == ref.mm_token_type_ids
        assert torch.equal(got.pixel_values, ref.pixel_values)
        assert torch.equal(got.image_grid_thw, ref.image_grid_thw)
