"""The memory plan (`mssr plan`, mssr.trainer.memory): parameter-derived rows against independent counts of
the real Qwen2.5-VL shapes, the CLI's output and exit codes, the preflight's CPU no-op."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from mssr.cli.main import main
from mssr.config import ConfigError, load_config
from mssr.models.shapes import build_meta_model, known_shape, preset_config, resolve_config, shape_config
from mssr.trainer.config import TrainConfig
from mssr.trainer.memory import GB, format_plan, plan_memory, preflight

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs" / "paper"
SHAPES = {"7b": "Qwen/Qwen2.5-VL-7B-Instruct", "3b": "Qwen/Qwen2.5-VL-3B-Instruct"}
# exact counts of the meta models; published: 8.29 B and 3.75 B (the model cards' safetensors totals)
EXACT = {"7b": 8_292_166_656, "3b": 3_754_622_976}
PUBLISHED = {"7b": 8.29e9, "3b": 3.75e9}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def meta():
    return {k: build_meta_model(shape_config(v)) for k, v in SHAPES.items()}


def _paper(size: str, *overrides: str) -> TrainConfig:
    return load_config(TrainConfig, PAPER / f"qwen2_5_vl_{size}_mssr.yaml", list(overrides))


def _counts(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())  # distinct tensors: tied embeddings count once
    vision = sum(p.numel() for p in model.model.visual.parameters())
    return total, vision


def _lora(model: nn.Module, rank: int) -> int:
    return sum(
        rank * (m.in_features + m.out_features)
        for name, m in model.model.language_model.named_modules()
        if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in TARGETS
    )


@pytest.mark.parametrize("size", ["7b", "3b"])
def test_published_parameter_counts(meta, size):
    total, vision = _counts(meta[size])
    assert total == EXACT[size]
    assert abs(total / PUBLISHED[size] - 1) < 0.01
    plan = plan_memory(_paper(size), devices=8, alternatives=False)
    assert plan.params.total == total and plan.params.vision == vision
    assert plan.params.language == total - vision
    assert plan.image_tokens == 1280 and plan.prompt_tokens == 256 + 1280 and plan.seq_len == 1536 + 2048


@pytest.mark.parametrize("size", ["7b", "3b"])
@pytest.mark.parametrize(
    "strategy,extra",
    [("ddp", ()), ("fsdp", ()), ("ddp", ("model.freeze_vision=true",)), ("fsdp", ("model.lora_rank=16",))],
)
def test_state_rows_match_independent_counts(meta, size, strategy, extra):
    total, vision = _counts(meta[size])
    lora = _lora(meta[size], 16) if extra and "lora" in extra[0] else 0
    trainable = lora or (total - vision if extra else total)
    plan = plan_memory(_paper(size, *extra), devices=8, strategy=strategy, alternatives=False)
    shard = 8 if strategy == "fsdp" else 1

    def div(x: int) -> int:
        return -(-x // shard)

    assert plan.params.trainable == trainable and plan.params.lora == lora
    assert plan.row("params") == div((total + lora) * 4)
    assert plan.row("grads") == div(trainable * 4)
    assert plan.row("optimizer") == div(trainable * 8)
    assert plan.row("reference") == (0 if lora else div(total * 2))  # bf16 copy; none under LoRA


@pytest.mark.parametrize("size", ["7b", "3b"])
def test_lora_trainable_is_rank_times_in_plus_out(meta, size):
    plan = plan_memory(_paper(size, "model.lora_rank=64"), devices=8, alternatives=False)
    expected = _lora(meta[size], 64)
    assert plan.params.lora == plan.params.trainable == expected
    # by hand: per layer q, o (h→h), k, v (h→kv), gate, up (h→i), down (i→h): Σ(in+out) = 9h + 2kv + 3i
    layers, h, kv, i = {"7b": (28, 3584, 512, 18944), "3b": (36, 2048, 256, 11008)}[size]
    assert expected == layers * 64 * (9 * h + 2 * kv + 3 * i)


def test_full_finetune_7b_ddp_does_not_fit_and_names_fsdp():
    plan = plan_memory(_paper("7b", "parallel.strategy=ddp"), devices=8, device_memory_gb=80)
    assert not plan.fits and plan.peak > 80 * GB
    assert plan.row("ddp_buckets") > 0
    assert any("fsdp" in s for s in plan.suggestions)
    fsdp = [a for a in plan.alternatives if a.label.startswith("fsdp")]
    assert fsdp and all(a.peak < plan.peak for a in fsdp)
    text = format_plan(plan)
    assert "DOES NOT FIT" in text and "switch to fsdp" in text


def test_cli_paper_7b_prints_table_and_verdict(capsys):
    rc = main(["plan", str(PAPER / "qwen2_5_vl_7b_mssr.yaml"), "--devices", "8", "--device-memory", "80"])
    out = capsys.readouterr().out
    assert rc == 0  # the paper config (fsdp, gradient checkpointing, gen batch 64) fits 8 x 80 GB
    assert "verdict: FITS" in out and "fsdp on 8 device(s)" in out
    assert "memory plan: Qwen/Qwen2.5-VL-7B-Instruct" in out
    for label in ("parameters (master, float32)", "optimizer state", "activations", "KV cache", "verdict:"):
        assert label in out
    assert "8 device(s) of 80.0 GB" in out


def test_cli_exit_codes(capsys):
    cfg = str(PAPER / "qwen2_5_vl_7b_mssr.yaml")
    fits = ["rollout.gen_batch_size=64", "val.batch_size=64"]
    # options after the config and between overrides are still options
    assert main(["plan", cfg, "--devices", "8", fits[0], "--strategy", "fsdp", fits[1]]) == 0
    out = capsys.readouterr().out
    assert "verdict: FITS" in out and "fsdp on 8 device(s)" in out
    assert main(["plan", cfg, "--devices", "1", "--strategy", "fsdp", *fits]) == 1
    assert "verdict: DOES NOT FIT" in capsys.readouterr().out
    assert main(["plan", cfg, "optim.no_such_key=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mssr plan: config error:") and "\n" not in err
    assert main(["plan", cfg, "model.path=/nowhere/my-model"]) == 2
    assert "not a known shape" in capsys.readouterr().err
    assert main(["plan", str(ROOT / "no_such.yaml")]) == 2


def test_format_plan_lines():
    plan = plan_memory(
        _paper("3b", "parallel.strategy=fsdp", "rollout.gen_batch_size=128", "val.batch_size=128"), devices=8
    )
    assert plan.fits and plan.peak == max(plan.update_peak, plan.rollout_peak)
    text = format_plan(plan)
    lines = text.splitlines()
    assert lines[0] == "memory plan: Qwen/Qwen2.5-VL-3B-Instruct"
    for row in plan.rows:  # one line per row: label, phase, GB with one decimal
        line = next(ln for ln in lines if ln.strip().startswith(row.label))
        assert line.split()[-2:] == [row.phase, f"{row.bytes / GB:.1f}"]
    assert any(ln.startswith("verdict: FITS") for ln in lines)
    assert "to fit:" not in text and len(plan.alternatives) == 8


def test_shapes_resolution(tmp_path):
    assert known_shape("Qwen/Qwen2.5-VL-7B-Instruct") == SHAPES["7b"]
    assert known_shape("/models/qwen2.5-vl-3b-instruct/") == SHAPES["3b"]
    assert known_shape("Qwen/Qwen2-VL-7B-Instruct") is None and known_shape(None) is None
    with pytest.raises(ValueError):
        shape_config("llama")
    # a local model directory's config.json is read; the preset plan uses the preset's 64×64 image
    preset_config("tiny").save_pretrained(tmp_path)
    name, cfg = resolve_config(str(tmp_path))
    assert name == str(tmp_path) and cfg.get_text_config().hidden_size == 128
    local = plan_memory(load_config(TrainConfig, None, [f"model.path={tmp_path}"]), alternatives=False)
    preset = plan_memory(load_config(TrainConfig), alternatives=False)
    assert local.params == preset.params and preset.image_tokens == 16
    assert preset.fits and preset.peak < 4 * GB


def test_preflight_is_a_noop_on_cpu():
    assert preflight(_paper("7b"), world_size=8, device="cpu") is None


def test_bad_strategy_is_a_config_error():
    with pytest.raises(ConfigError):
        plan_memory(_paper("3b"), strategy="zero3")


# ------------------------------------------------------------------ colocated vLLM (rollout.engine=vllm)
def test_paper_configs_plan_vllm_with_hand_computed_figures():
    plan = plan_memory(_paper("7b"), devices=8, device_memory_gb=80)
    assert plan.vllm_utilization == 0.5 and plan.vllm_sleep_level == 2 and plan.fits
    # vLLM's share: u·M = 0.5 × 80 GB, in the rollout phase only (asleep during the update at level 2)
    assert plan.row("vllm") == 40 * GB and plan.row("kv_cache") == 0 and plan.row("rollout_weights") == 0
    (vllm_row,) = [r for r in plan.rows if r.key == "vllm"]
    assert vllm_row.phase == "rollout"
    # KV cache pool: u·M − P·c − 1 GB over (prompt + response)·L·2·kv·c per sequence; Qwen2.5-VL-7B:
    # L = 28 layers, kv = 4 heads × 128 = 512, c = 2 (bf16), S = 256 + 1280 + 2048 = 3584
    per_seq = 3584 * 28 * 2 * 512 * 2
    assert per_seq == 205_520_896
    pool = 40 * GB - EXACT["7b"] * 2 - 1 * GB
    assert plan.vllm_kv_sequences == pool // per_seq == 109
    # the rollout phase: the trainer's shards (params, optimizer, reference) + u·M + overhead (3 GB + 10 % of the
    # larger phase before overhead)
    persistent = plan.row("params") + plan.row("optimizer") + plan.row("reference")
    update = (
        persistent
        + plan.row("grads")
        + plan.row("compute_copies")
        + plan.row("activations")
        + plan.row("logits")
    )
    overhead = 3 * GB + int(0.10 * max(update, persistent + 40 * GB))
    assert plan.rollout_peak == persistent + 40 * GB + overhead and plan.update_peak == update + overhead
    u = plan.vllm_max_utilization
    assert u is not None and 0.5 < u < 0.95
    higher = plan_memory(
        _paper("7b", f"rollout.vllm.gpu_memory_utilization={u + 0.01:.2f}"), devices=8, device_memory_gb=80
    )
    assert not higher.fits  # u is the largest in 0.01 steps
    text = format_plan(plan)
    assert "its KV cache holds 109 sequences of 3584 tokens" in text and f"fits: {u:g}" in text


def test_vllm_sleep_levels_move_its_share_between_phases_and_host():
    awake = plan_memory(_paper("7b", "rollout.vllm.sleep_level=0"), devices=8, device_memory_gb=80)
    asleep = plan_memory(_paper("7b", "rollout.vllm.sleep_level=1"), devices=8, device_memory_gb=80)
    dropped = plan_memory(_paper("7b"), devices=8, device_memory_gb=80)
    assert [r.phase for r in awake.rows if r.key == "vllm"] == ["both"]
    # level 0: the update phase also carries u·M = 40 GB (before the 10 % fragmentation allowance)
    assert awake.update_peak - dropped.update_peak >= 40 * GB
    # level 1: weights offloaded to CPU memory: P·c host bytes per process; level 2 none
    assert asleep.host_bytes - dropped.host_bytes == EXACT["7b"] * 2
    assert asleep.update_peak == dropped.update_peak
    # at level 0 no vLLM share that holds the 7B weights (16.6 GB) fits beside the update: the plan says to sleep
    assert not awake.fits and awake.vllm_max_utilization is None
    assert any("rollout.vllm.sleep_level=2" in s for s in awake.suggestions)
