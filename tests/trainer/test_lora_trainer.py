"""LoRA and a frozen vision tower in the RL trainer: what trains and what does not, the reference log-probs
(adapters disabled == the starting model), exact resume from ``adapter.pt``, and the merged ``policy/`` export."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mssr.models import load_policy
from mssr.models.lora import is_lora
from mssr.rollout import HFRolloutEngine, compute_logprobs
from mssr.trainer.checkpoint import load_state
from mssr.trainer.trainer import RLTrainer

VOLATILE = ("timing_s/", "perf/", "init/time_s")
VISION = "model.visual."  # the vision tower (and its patch merger) in transformers 5's Qwen2.5-VL


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    now = dict(model.named_parameters())
    assert now.keys() == before.keys()
    return {n for n, p in now.items() if not torch.equal(p.detach(), before[n])}


def _metrics(run: Path) -> dict[int, dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {r["step"]: {k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows}


def _ckpt(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:06d}"


def _capture_ref(trainer: RLTrainer, monkeypatch) -> list[tuple]:
    """Record (step, batch, old log-probs, reference log-probs) of every step."""
    from mssr.trainer import step as step_mod

    seen: list[tuple] = []
    real = step_mod.compute_ref_logprobs

    def spy(tr, d):
        real(tr, d)
        seen.append(
            (trainer.step, d.batch, d.old_logprobs.clone(), d.ref_logprobs.clone(), d.loss_mask.clone())
        )

    monkeypatch.setattr(step_mod, "compute_ref_logprobs", spy)  # the step looks it up in its module
    return seen


def _inputs(trainer: RLTrainer) -> dict[str, torch.Tensor]:
    """Processor inputs of a training prompt (with its image) followed by a few text tokens."""
    p = trainer.train_prompts[0]
    assert p.images, "the built-in task's prompts carry an image"
    return dict(trainer.policy.processor(text=[p.text + " 12 + 7"], images=p.images, return_tensors="pt"))


def test_lora_trains_only_adapters_and_reference_is_the_starting_model(
    make_config, tiny_policy_dir, tmp_path, monkeypatch
):
    trainer = RLTrainer(make_config("model.lora_rank=8", "model.lora_alpha=16"))
    assert is_lora(trainer.model) and trainer.ref_model is None and trainer.needs_ref
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {id(p) for p in trainer.params} == {
        id(p) for n, p in trainer.model.named_parameters() if n in trainable
    }
    before = _snapshot(trainer.model)
    seen = _capture_ref(trainer, monkeypatch)
    trainer.train()

    changed = _changed(before, trainer.model)
    # every adapter moved, every base weight is bitwise what it was
    assert changed == trainable, f"differ: {sorted(changed ^ trainable)[:5]}"

    start = load_policy(tiny_policy_dir, dtype=torch.float32).model.eval()
    assert not is_lora(start)
    for step, batch, old, ref, mask in seen:
        want = compute_logprobs(start, batch, micro_batch_size=4).logprobs
        m = batch.response_mask > 0
        assert torch.allclose(ref[m], want[m], rtol=0, atol=1e-6), (
            f"step {step}: {(ref - want)[m].abs().max()}"
        )
        if step == 2:  # the adapters moved the policy away from the reference: the check above is not vacuous
            assert (old - ref)[mask > 0].abs().max() > 1e-4

    # the checkpoint: adapters (what resume loads), trainer state, and a plain merged policy
    ck = _ckpt(trainer.run_dir, 2)
    adapter = load_state(ck / "adapter.pt")
    assert adapter and all("lora_" in k for k in adapter)
    assert (ck / "trainer_state.pt").is_file()
    merged = load_policy(ck / "policy", dtype=torch.float32)
    assert not is_lora(merged.model) and not any("lora_" in k for k in merged.model.state_dict())
    assert merged.info.get("lora_merged") == {"rank": 8, "alpha": 16.0}
    inputs = _inputs(trainer)
    peft_model = trainer.policy.model.eval()
    with torch.no_grad():
        got = merged.model.eval()(**inputs).logits
        want = peft_model(**inputs).logits
        base = start(**inputs).logits
    assert (want - base).abs().max() > 1e-4  # training changed the logits ...
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)  # ... and the export has the same ones

    engine = HFRolloutEngine(merged.model, merged.processor, suppress_token_ids=trainer.suppress)
    out = engine.generate(trainer.train_prompts[:2], greedy=True, max_new_tokens=4)
    assert out.response_ids.shape[0] == 2 and int(out.response_mask.sum()) > 0
    assert len(out.response_text) == 2


def test_lora_four_steps_straight_equal_two_plus_resumed_two(make_config, tmp_path):
    a, b = tmp_path / "straight", tmp_path / "resumed"
    common = ("model.lora_rank=8", "checkpoint.keep_last=10")
    RLTrainer(make_config(*common, "steps=4", out=a)).train()
    RLTrainer(make_config(*common, "steps=2", out=b)).train()
    resumed = RLTrainer(make_config(*common, "steps=4", out=b))
    assert resumed.maybe_resume() == _ckpt(b, 2)
    resumed.train()

    wa, wb = load_state(_ckpt(a, 4) / "adapter.pt"), load_state(_ckpt(b, 4) / "adapter.pt")
    assert wa.keys() == wb.keys()
    diff = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not diff, f"adapter weights differ after resume: {diff[:5]}"
    w2 = load_state(_ckpt(b, 2) / "adapter.pt")
    assert any(not torch.equal(w2[k], wb[k]) for k in wb)  # steps 3-4 did train
    ma, mb = _metrics(a), _metrics(b)
    for s in (3, 4):
        assert ma[s] == mb[s], f"metrics of step {s} differ"


def test_freeze_vision_full_fine_tuning(make_config):
    trainer = RLTrainer(make_config("model.freeze_vision=true"))
    assert trainer.ref_model is not None  # full fine-tuning keeps a frozen reference copy
    names = dict(trainer.model.named_parameters())
    vision = {n for n in names if n.startswith(VISION)}
    assert vision and not any(names[n].requires_grad for n in vision)
    assert all(p.requires_grad for n, p in names.items() if n not in vision)
    before = _snapshot(trainer.model)
    trainer.train()
    changed = _changed(before, trainer.model)
    assert not changed & vision, f"vision parameters changed: {sorted(changed & vision)[:5]}"
    language = {n for n in names if n.startswith("model.language_model.")}
    assert language and len(changed & language) > 0.9 * len(language), sorted(language - changed)[:5]
    # the saved policy holds the unchanged tower
    saved = load_policy(_ckpt(trainer.run_dir, 2) / "policy", dtype=torch.float32).model.state_dict()
    assert all(torch.equal(saved[n], before[n]) for n in vision)


def test_freeze_vision_with_lora(make_config):
    trainer = RLTrainer(make_config("model.freeze_vision=true", "model.lora_rank=8"))
    assert trainer.ref_model is None
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and ".visual." not in n for n in trainable)
    before = _snapshot(trainer.model)
    trainer.train()
    changed = _changed(before, trainer.model)
    assert changed == trainable
    assert not any(".visual." in n for n in changed)


def test_freeze_vision_wins_over_lora_vision(make_config):
    trainer = RLTrainer(
        make_config("model.freeze_vision=true", "model.lora_rank=8", "model.lora_vision=true")
    )
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and not [n for n in trainable if ".visual." in n]
