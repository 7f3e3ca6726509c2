"""Per-device memory plan of a training config: will it fit, and what to change when it does not.

An estimate that errs high: every term below is an upper-end count of what the trainer keeps, not a
measurement, so "fits" means "fits with margin under these assumptions"; "does not fit" near the limit may
still run. Sizes come from the real parameter shapes (a weightless ``meta`` model, :mod:`mssr.models.shapes`).
GB = 10⁹ bytes. Symbols: N devices (shards under ``fsdp``, 1 under ``ddp``), P parameters (distinct
tensors, tied embeddings once), T trainable parameters (all; minus the vision tower and merger under
``freeze_vision``; only the adapters under LoRA), p / c bytes of ``param_dtype`` / compute dtype
(``model.dtype``; ``auto`` = bfloat16, the GPU choice), h / i / kv / L / V the language model's hidden size,
MLP size, key-value width (kv heads × head dim), decoder layers and vocabulary; h_v / i_v / L_v the vision
tower's. The trainer's two phases do not overlap, so peak = persistent + max(update, rollout) + overhead.

Persistent (both phases):
- parameters (master): (P + adapters)·p / N; 0 on the device under ``cpu_offload``.
- optimizer state: AdamW's two moments, 2·T·p / N; 0 under ``cpu_offload``.
- DDP gradient buckets (ddp, N > 1): T·p, DDP's flat all-reduce buffers (0 with gradient_as_bucket_view).
- reference model: P·c / N, a frozen compute-dtype copy, when ``kl_coef > 0`` or the tracker's ``kl_window``
  ρ needs it; none under LoRA (adapters disabled instead). Kept on the device even under ``cpu_offload``.
Update phase (one micro-batch of m = ``optim.micro_batch_size`` sequences of S = prompt + response tokens):
- gradients: T·p / N; 0 under ``cpu_offload``.
- compute-dtype copies. ddp (when c ≠ p): autocast caches the cast of every trainable weight until its region
  ends (and backward keeps them), T·c, plus one transient cast of the largest layer. fsdp: the root unit
  (embeddings, lm_head, norms, patch embed, merger; FSDP2 keeps the root gathered) plus 2 gathered layers
  (current + prefetch), (root + 2·layer)·c — the whole model (P·c) with ``reshard_after_forward: false`` —
  plus their unsharded gradients before the reduce-scatter, (root_T + layer)·(c + 4) (fp32 reduce).
- activations for SDPA / flash attention (no S² term), bytes per token per decoder layer
  A = c·(6h + 2kv + 4i) + 8h: two RMSNorms keep their fp32 input (2·4h) and two compute-dtype tensors
  (normalised and cast, 2·2h·c); attention keeps rotated q and the output (2h) and k, v (2kv); the MLP keeps
  gate, up, silu(gate) and their product (4i). Without gradient checkpointing m·S·(L + 1)·A (the +1: the
  backward's temporaries for one layer); with it m·S·(L·c·h + 2·A) (one hidden state per layer boundary,
  one layer recomputed plus its temporaries). The vision tower adds the same with h_v, i_v, kv = h_v, L_v
  over m·image_tokens·merge² patches, only when it trains (not frozen, or LoRA on it).
- logits: m·R·V·(c + 8) with R = ``max_new_tokens`` (the trainer asks for response logits only,
  ``logits_to_keep``): the compute-dtype logits, their fp32 cast and one fp32 log-softmax/gradient buffer.
Rollout phase (generation with the built-in HF engine; G = ``gen_batch_size`` rows, or ``val.batch_size`` when
validation runs and is larger):
- KV cache: G·S·L·2·kv·c (prompt caches are copied to every row).
- weights for generation: fsdp gathers the whole model, (P + adapters)·c; ddp: the autocast cache as above.
- prefill / sampling transients: G'·max(prompt·(3i + 3h), patches·(3i_v + 3h_v))·c + G·V·16, G' the rows
  prefilled at once (distinct prompts under ``share_prompts``): one MLP's gate/up/product for every prompt
  token (or vision patch) at once, plus fp32 logits and a top-p sort per row.
Rollout phase with a colocated vLLM engine (``rollout.engine=vllm``; u = ``rollout.vllm.gpu_memory_utilization``, M the
device's memory): vLLM takes u·M for itself — its own compute-dtype copy of the weights P·c (not sharded: every
rank runs a whole engine), an activation reserve R_v = 1 GB (eager mode, no CUDA graphs) and the rest as its KV
cache pool, which holds (u·M − P·c − R_v) / ((prompt + response)·L·2·kv·c) sequences at once. The trainer's own
generation rows above are not used. ``rollout.vllm.sleep_level`` says what vLLM holds during the update: 0 — all of u·M
(a row of both phases); 1 — nothing on the device, its weights in CPU memory (P·c of host memory per process);
2 — nothing (the weights are synced in again after the update). The plan names the largest u that fits, and the
KV sequences it gives.
Overhead: 3 GB fixed (CUDA context and kernels ~1 GB, cuBLAS workspaces, NCCL buffers ~1 GB) + 10 % of the
rest (caching-allocator fragmentation).

Sequence lengths: prompt = 256 text tokens (system prompt, instruction, question) + image tokens, where
image tokens = max_pixels / (patch·merge)² — ``model.max_pixels``, else a local model's
``preprocessor_config.json``, else Qwen2.5-VL's processor default 12845056 (16384 tokens) for real models,
a 64×64 image for the built-in presets.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mssr.config import ConfigError

GB = 10**9
TEXT_PROMPT_TOKENS = 256
DEFAULT_MAX_PIXELS = 12845056  # Qwen2.5-VL's image processor default (16384 merged tokens)
PRESET_IMAGE_SIZE = 64  # build_tiny_policy's default image side
FIXED_OVERHEAD = 3 * GB
FRAGMENTATION = 0.10
LORA_ALTERNATIVE_RANK = 64
VLLM_RESERVE = 1 * GB  # vLLM's activation / sampler reserve inside its share (eager mode)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class MemoryPlanError(RuntimeError):
    """The plan does not fit the device; the message is the formatted plan."""


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs from an architecture (parameter counts are distinct tensors' numel)."""

    name: str
    total: int
    vision: int
    text_layer: int  # largest decoder layer
    vision_block: int  # largest vision block
    root: int  # outside decoder layers and vision blocks: embeddings, lm_head, norms, patch embed, merger
    root_vision: int  # the vision part of root (patch embed, merger)
    lora_text: int  # Σ (in + out) over the language model's LoRA-targeted linear layers
    lora_vision: int  # the same over the vision tower's
    hidden: int
    layers: int
    intermediate: int
    kv_dim: int
    vocab: int
    v_hidden: int
    v_blocks: int
    v_intermediate: int
    patch: int
    merge: (
        int  # Qwen: spatial merge; Idefics3: pixel-shuffle scale factor; Gemma 3: 0 (pooled to a fixed count)
    )
    # how many language-model tokens an image becomes: "qwen" (pixels / (patch·merge)²), "fixed" (Gemma 3:
    # `tokens_per_image` whatever the size, pan-and-scan off), "tiles" (Idefics3: `tokens_per_image` per
    # `tile`-sized tile, plus a global tile when an image is split)
    image_rule: str = "qwen"
    tokens_per_image: int = 0
    tile: int = 0
    patches_per_token: int = 0  # vision-tower patches behind one language-model image token

    @property
    def language(self) -> int:
        return self.total - self.vision

    @property
    def largest_layer(self) -> int:
        return max(self.text_layer, self.vision_block)


@dataclass(frozen=True)
class ParamCounts:
    total: int
    vision: int
    language: int
    trainable: int
    lora: int


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    bytes: int
    phase: str  # both | update | rollout


@dataclass(frozen=True)
class Alternative:
    label: str
    peak: int
    fits: bool
    # the largest optim.micro_batch_size / rollout.gen_batch_size (halving from the configured ones) that fit;
    # None when even 1 does not
    micro_batch_size: int | None
    gen_batch_size: int | None


@dataclass
class MemoryPlan:
    model: str
    strategy: str
    devices: int
    device_memory: int  # bytes
    param_dtype: str
    compute_dtype: str
    gradient_checkpointing: bool
    cpu_offload: bool
    lora_rank: int
    params: ParamCounts
    prompt_tokens: int
    image_tokens: int
    response_tokens: int
    micro_batch_size: int
    gen_rows: int
    rows: list[Row]
    update_peak: int
    rollout_peak: int
    peak: int
    fits: bool
    host_bytes: int  # per process, in CPU memory (cpu_offload)
    alternatives: list[Alternative] = field(default_factory=list)
    vllm_utilization: float | None = None  # the configured gpu_memory_utilization under rollout.engine=vllm
    vllm_sleep_level: int = 0
    vllm_max_utilization: float | None = None  # the largest u (in steps of 0.01) with which the plan fits
    vllm_kv_sequences: int | None = None  # sequences of prompt + response tokens its KV cache holds at once
    suggestions: list[str] = field(default_factory=list)

    @property
    def seq_len(self) -> int:
        return self.prompt_tokens + self.response_tokens

    def row(self, key: str) -> int:
        return next((r.bytes for r in self.rows if r.key == key), 0)


@dataclass(frozen=True)
class _Setup:
    strategy: str
    devices: int
    cpu_offload: bool
    reshard: bool
    lora_rank: int
    lora_vision: bool
    freeze_vision: bool
    gc: bool
    p: int
    c: int
    reference: bool
    micro: int
    gen_rows: int
    prefill_rows: int
    n: int
    share_prompts: bool
    val_rows: int
    prompt: int
    image_tokens: int
    response: int
    vllm: bool = False
    vllm_util: float = 0.0
    vllm_sleep: int = 0
    device_memory: int = 0


# ---------------------------------------------------------------------------------------------- model shape
_SHAPE_CACHE: dict[tuple, ModelShape] = {}


def model_shape(cfg: Any) -> tuple[ModelShape, Any]:
    """``(shape, hf_config)`` of ``cfg.model``; ConfigError when the model cannot be resolved."""
    from mssr.models.shapes import resolve_config

    m = cfg.model
    try:
        name, hf = resolve_config(m.path, m.preset)
    except (ValueError, OSError) as e:
        raise ConfigError(str(e)) from None
    key = (name, tuple(m.lora_target_modules), hf.to_json_string())
    if key not in _SHAPE_CACHE:
        _SHAPE_CACHE[key] = analyse(name, hf, m.lora_target_modules)
    return _SHAPE_CACHE[key], hf


def analyse(name: str, hf_config: Any, lora_targets: list[str]) -> ModelShape:
    """Count the parameters of `hf_config`'s model (built on the meta device) by part."""
    from torch import nn

    from mssr.models.shapes import build_meta_model

    model = build_meta_model(hf_config)
    total = sum(p.numel() for p in model.parameters())
    # the vision tower and its projector into the language model (Qwen's merger sits inside `visual`)
    vision_mods = [m for n in _VISION_MODULES if (m := _find(model, n)) is not None]
    vision = sum(p.numel() for mod in vision_mods for p in mod.parameters())
    layers = [mod for mod in model.modules() if type(mod).__name__.endswith("DecoderLayer")]
    in_vision = {id(m) for mod in vision_mods for m in mod.modules()}
    blocks = [
        mod
        for mod in model.modules()
        if id(mod) in in_vision and type(mod).__name__.endswith(("VisionBlock", "EncoderLayer"))
    ]
    size = [sum(p.numel() for p in mod.parameters()) for mod in layers]
    bsize = [sum(p.numel() for p in mod.parameters()) for mod in blocks]
    targets = set(lora_targets)
    lora_text = lora_vis = 0
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mname.rsplit(".", 1)[-1] in targets:
            if _VISION_MODULES & set(mname.split(".")):
                lora_vis += mod.in_features + mod.out_features
            else:
                lora_text += mod.in_features + mod.out_features
    tc = hf_config.get_text_config()
    vc = hf_config.vision_config
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    v_hidden = v_inter = 0
    if blocks:
        lin = [mod for mod in blocks[0].modules() if isinstance(mod, nn.Linear)]
        v_hidden = lin[0].in_features
        mlp = getattr(blocks[0], "mlp", blocks[0])
        v_inter = max(mod.out_features for mod in mlp.modules() if isinstance(mod, nn.Linear))
    return ModelShape(
        name=name,
        total=total,
        vision=vision,
        text_layer=max(size, default=0),
        vision_block=max(bsize, default=0),
        root=total - sum(size) - sum(bsize),
        root_vision=vision - sum(bsize),
        lora_text=lora_text,
        lora_vision=lora_vis,
        hidden=tc.hidden_size,
        layers=tc.num_hidden_layers,
        intermediate=tc.intermediate_size,
        kv_dim=tc.num_key_value_heads * head_dim,
        vocab=tc.vocab_size,
        v_hidden=v_hidden,
        v_blocks=len(blocks),
        v_intermediate=v_inter,
        patch=vc.patch_size,
        **_image_rule(hf_config),
    )


# the modules holding a family's vision tower and projector (Qwen; Gemma 3; Idefics3 / SmolVLM)
_VISION_MODULES = frozenset({"visual", "vision_tower", "multi_modal_projector", "vision_model", "connector"})


def _image_rule(hf_config: Any) -> dict[str, Any]:
    """How `hf_config`'s family turns an image into language-model tokens (`ModelShape.image_rule`)."""
    vc = hf_config.vision_config
    merge = getattr(vc, "spatial_merge_size", None)
    if merge is not None:  # Qwen2/2.5/3-VL
        return {"merge": merge, "image_rule": "qwen", "patches_per_token": merge**2}
    patches = (vc.image_size // vc.patch_size) ** 2  # SigLIP-style towers see one fixed-size image (tile)
    fixed = getattr(hf_config, "mm_tokens_per_image", None)
    if fixed:  # Gemma 3: pooled to mm_tokens_per_image
        return {
            "merge": 0,
            "image_rule": "fixed",
            "tokens_per_image": int(fixed),
            "tile": vc.image_size,
            "patches_per_token": max(1, patches // int(fixed)),
        }
    scale = getattr(hf_config, "scale_factor", None)
    if scale:  # Idefics3 / SmolVLM: pixel shuffle by scale_factor per tile
        return {
            "merge": scale,
            "image_rule": "tiles",
            "tokens_per_image": patches // scale**2,
            "tile": vc.image_size,
            "patches_per_token": scale**2,
        }
    raise ConfigError(
        f"mssr plan: no image-token rule for model_type {getattr(hf_config, 'model_type', '?')!r} "
        "(known: Qwen2/2.5/3-VL, Gemma 3, Idefics3 / SmolVLM); an estimate would be wrong"
    )


def _find(model: Any, name: str) -> Any:
    for mname, mod in model.named_modules():
        if mname.rsplit(".", 1)[-1] == name:
            return mod
    return None


def _max_pixels(cfg: Any) -> int:
    m = cfg.model
    if m.max_pixels:
        return int(m.max_pixels)
    if m.path is None:
        return PRESET_IMAGE_SIZE * PRESET_IMAGE_SIZE
    pre = Path(m.path).expanduser() / "preprocessor_config.json"
    if pre.is_file():
        try:
            data = json.loads(pre.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        value = data.get("max_pixels") or (data.get("size") or {}).get("longest_edge")
        if value:
            return int(value)
    return DEFAULT_MAX_PIXELS


def _image_tokens(cfg: Any, shape: ModelShape) -> int:
    """Language-model tokens of the largest image `cfg` admits (`ModelShape.image_rule`)."""
    if shape.image_rule == "qwen":
        return _max_pixels(cfg) // (shape.patch * shape.merge) ** 2
    if shape.image_rule == "fixed":
        pre = _preprocessor(cfg)
        if pre.get("do_pan_and_scan"):
            raise ConfigError(
                f"mssr plan: {shape.name} has pan-and-scan on (crops add images of {shape.tokens_per_image} "
                "tokens each, a count the plan does not model); an estimate would be wrong"
            )
        return shape.tokens_per_image
    # tiles: the image is resized to a longest edge, split into tile×tile crops plus a global one
    m = cfg.model
    pre = _preprocessor(cfg)
    if m.max_pixels:
        side = math.isqrt(int(m.max_pixels))
    elif m.path is None:
        side = PRESET_IMAGE_SIZE
    elif pre.get("do_image_splitting", True):
        side = int((pre.get("size") or {}).get("longest_edge") or 4 * shape.tile)
    else:
        side = int((pre.get("max_image_size") or {}).get("longest_edge") or shape.tile)
    n = max(1, math.ceil(side / shape.tile))
    tiles = n * n + (1 if n > 1 else 0)
    return tiles * shape.tokens_per_image


def _preprocessor(cfg: Any) -> dict[str, Any]:
    """The model directory's ``preprocessor_config.json`` (``{}`` for a preset or when absent)."""
    if cfg.model.path is None:
        return {}
    pre = Path(cfg.model.path).expanduser() / "preprocessor_config.json"
    try:
        return json.loads(pre.read_text(encoding="utf-8")) if pre.is_file() else {}
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------------------------- the plan
def _setup(cfg: Any, shape: ModelShape, devices: int, strategy: str | None) -> _Setup:
    m, r, spec = cfg.model, cfg.rollout, cfg.algorithm.spec()
    compute = "bfloat16" if m.dtype == "auto" else m.dtype
    n = spec.rollouts_per_prompt
    gen_rows = max(1, r.gen_batch_size // n) * n
    val_on = cfg.val.every > 0 or cfg.val.at_start
    image_tokens = _image_tokens(cfg, shape)
    strategy = strategy or cfg.parallel.strategy
    return _Setup(
        strategy=strategy,
        devices=max(1, devices),
        cpu_offload=cfg.parallel.cpu_offload and strategy == "fsdp",
        reshard=cfg.parallel.reshard_after_forward,
        lora_rank=m.lora_rank,
        lora_vision=m.lora_vision,
        freeze_vision=m.freeze_vision,
        gc=m.gradient_checkpointing,
        p=DTYPE_BYTES[m.param_dtype],
        c=DTYPE_BYTES[compute],
        reference=spec.kl_coef > 0 or (spec.use_tracker and cfg.algorithm.rho.schedule == "kl_window"),
        micro=cfg.optim.micro_batch_size,
        gen_rows=gen_rows,
        prefill_rows=gen_rows // n if r.share_prompts else gen_rows,
        n=n,
        share_prompts=r.share_prompts,
        val_rows=cfg.val.batch_size if val_on else 0,
        prompt=TEXT_PROMPT_TOKENS + image_tokens,
        image_tokens=image_tokens,
        response=r.max_new_tokens,
        vllm=r.engine == "vllm",
        vllm_util=r.vllm.gpu_memory_utilization,
        vllm_sleep=r.vllm.sleep_level,
    )


def _with_gen(k: _Setup, g: int) -> _Setup:
    rows = max(1, g // k.n) * k.n
    return replace(
        k,
        gen_rows=rows,
        prefill_rows=rows // k.n if k.share_prompts else rows,
        val_rows=min(k.val_rows, rows),
    )


def _counts(s: ModelShape, k: _Setup) -> ParamCounts:
    lora = k.lora_rank * (s.lora_text + (s.lora_vision if k.lora_vision and not k.freeze_vision else 0))
    trainable = lora if k.lora_rank else s.total - (s.vision if k.freeze_vision else 0)
    return ParamCounts(total=s.total, vision=s.vision, language=s.language, trainable=trainable, lora=lora)


def _rows(s: ModelShape, k: _Setup) -> tuple[list[Row], int]:
    """The rows (without overhead) and the host bytes per process."""
    cnt = _counts(s, k)
    fsdp = k.strategy == "fsdp"
    shard = k.devices if fsdp else 1

    def div(x: int) -> int:
        return -(-x // shard)

    p, c = k.p, k.c
    params = div((s.total + cnt.lora) * p)
    grads = div(cnt.trainable * p)
    optim = div(2 * cnt.trainable * p)
    host = params + grads + optim if k.cpu_offload else 0
    if k.cpu_offload:
        params = grads = optim = 0
    rows = [
        Row("params", f"parameters (master, {_dt(p)})", params, "both"),
        Row("optimizer", f"optimizer state (AdamW 2 moments, {_dt(p)})", optim, "both"),
    ]
    if not fsdp and k.devices > 1:
        rows.append(Row("ddp_buckets", "DDP gradient buckets", cnt.trainable * p, "both"))
    if k.reference and not k.lora_rank:
        rows.append(Row("reference", f"reference model ({_dt(c)})", div(s.total * c), "both"))
    rows.append(Row("grads", f"gradients ({_dt(p)})", grads, "update"))

    # compute-dtype copies
    if fsdp:
        if k.reshard:
            gathered = (s.root + 2 * s.largest_layer) * c
        else:
            gathered = (s.total + cnt.lora) * c
        if k.lora_rank:
            unsharded = cnt.lora * (c + 4)
        else:
            root_t = s.root - (s.root_vision if k.freeze_vision else 0)
            layer_t = s.text_layer if k.freeze_vision else s.largest_layer
            unsharded = (root_t + layer_t) * (c + 4)
        rows.append(
            Row("compute_copies", "gathered layers + unsharded grads", gathered + unsharded, "update")
        )
        if not k.vllm:
            rows.append(
                Row("rollout_weights", "rollout: whole model gathered", (s.total + cnt.lora) * c, "rollout")
            )
    elif c != p:
        cache = (cnt.trainable + s.largest_layer) * c
        rows.append(Row("compute_copies", f"autocast weight copies ({_dt(c)})", cache, "update"))
        if not k.vllm:
            rows.append(Row("rollout_weights", "rollout: autocast weight copies", cache, "rollout"))

    rows += _activation_rows(s, k)
    rollout, rollout_host = _rollout_rows(s, k)
    return rows + rollout, host + rollout_host


def _activation_rows(s: ModelShape, k: _Setup) -> list[Row]:
    """The update's activations (text and, where it trains, vision) and logits of one micro-batch."""
    c = k.c
    tokens = k.micro * (k.prompt + k.response)
    act = tokens * _layer_acts(s.hidden, s.kv_dim, s.intermediate, s.layers, c, k.gc)
    vision_trains = not k.freeze_vision and (k.lora_vision or not k.lora_rank)
    if vision_trains and s.v_blocks:
        patches = k.micro * k.image_tokens * s.patches_per_token
        act += patches * _layer_acts(s.v_hidden, s.v_hidden, s.v_intermediate, s.v_blocks, c, k.gc)
    gc = "with" if k.gc else "no"
    return [
        Row("activations", f"activations ({gc} grad. checkpointing)", act, "update"),
        Row("logits", "logits + log-softmax (fp32)", k.micro * k.response * s.vocab * (c + 8), "update"),
    ]


def _rollout_rows(s: ModelShape, k: _Setup) -> tuple[list[Row], int]:
    """The rollout's own memory: a colocated vLLM engine's share (and the host bytes its sleep offloads), or
    the built-in engine's KV cache and prefill/sampling transients."""
    c = k.c
    if k.vllm:
        share = int(k.vllm_util * k.device_memory)
        awake = k.vllm_sleep == 0
        label = f"vLLM engine (u={k.vllm_util:g}: weights + KV cache)" + (
            "" if awake else ", asleep in update"
        )
        # level 1: its weights offloaded to CPU memory while it sleeps
        return [
            Row("vllm", label, share, "both" if awake else "rollout")
        ], s.total * c if k.vllm_sleep == 1 else 0
    g = max(k.gen_rows, k.val_rows)
    kv = g * (k.prompt + k.response) * s.layers * 2 * s.kv_dim * c
    prefill = max(k.prefill_rows, k.val_rows)
    text = k.prompt * (3 * s.intermediate + 3 * s.hidden)
    vis = k.image_tokens * s.patches_per_token * (3 * s.v_intermediate + 3 * s.v_hidden)
    transients = prefill * max(text, vis) * c + g * s.vocab * 16
    return [
        Row("kv_cache", f"rollout: KV cache ({g} rows)", kv, "rollout"),
        Row("rollout_transients", "rollout: prefill + sampling", transients, "rollout"),
    ], 0


def _layer_acts(h: int, kv: int, i: int, layers: int, c: int, gc: bool) -> int:
    """Activation bytes per token (or patch) of a stack of `layers` layers (module docstring)."""
    a = c * (6 * h + 2 * kv + 4 * i) + 8 * h
    return layers * c * h + 2 * a if gc else (layers + 1) * a


def _evaluate(s: ModelShape, k: _Setup, budget: int) -> tuple[list[Row], int, int, int, int, bool]:
    rows, host = _rows(s, k)
    both = sum(r.bytes for r in rows if r.phase == "both")
    update = both + sum(r.bytes for r in rows if r.phase == "update")
    rollout = both + sum(r.bytes for r in rows if r.phase == "rollout")
    overhead = FIXED_OVERHEAD + int(FRAGMENTATION * max(update, rollout))
    rows.append(Row("overhead", "overhead (CUDA, NCCL, fragmentation)", overhead, "both"))
    peak = max(update, rollout) + overhead
    return rows, host, update + overhead, rollout + overhead, peak, peak <= budget


def _halvings(x: int) -> Iterator[int]:
    while x >= 1:
        yield x
        x //= 2


def _fit_sizes(s: ModelShape, k: _Setup, budget: int) -> tuple[int | None, int | None]:
    """Largest micro-batch and generation batch (halving from the configured ones) that fit together."""
    for g in _halvings(k.gen_rows):
        kg = _with_gen(k, g)
        for m in _halvings(k.micro):
            if _evaluate(s, replace(kg, micro=m), budget)[5]:
                return m, g
    return None, None


ALTERNATIVES: list[tuple[str, dict[str, Any]]] = [
    (name, {**kw, "gc": gc})
    for name, kw in [
        ("ddp", {"strategy": "ddp", "cpu_offload": False, "lora_rank": 0}),
        ("fsdp", {"strategy": "fsdp", "cpu_offload": False, "lora_rank": 0}),
        ("fsdp + cpu_offload", {"strategy": "fsdp", "cpu_offload": True, "lora_rank": 0}),
        (
            f"lora r={LORA_ALTERNATIVE_RANK}, ddp",
            {"strategy": "ddp", "cpu_offload": False, "lora_rank": LORA_ALTERNATIVE_RANK},
        ),
        # (LoRA under fsdp is not offered: the trainer does not combine them yet)
    ]
    for gc in (False, True)
]


def plan_memory(
    cfg: Any,
    *,
    devices: int = 1,
    device_memory_gb: float = 80.0,
    strategy: str | None = None,
    alternatives: bool = True,
) -> MemoryPlan:
    """The per-device memory plan of `cfg` on `devices` devices of `device_memory_gb` GB (10⁹ bytes) each.
    `strategy` overrides ``cfg.parallel.strategy``. ConfigError when the model cannot be resolved."""
    if strategy not in (None, "ddp", "fsdp"):
        raise ConfigError(f"strategy: {strategy!r} is not one of 'ddp', 'fsdp'")
    shape, _ = model_shape(cfg)
    budget = int(device_memory_gb * GB)
    k = replace(_setup(cfg, shape, devices, strategy), device_memory=budget)
    rows, host, update, rollout, peak, fits = _evaluate(shape, k, budget)
    plan = MemoryPlan(
        model=shape.name,
        strategy=k.strategy,
        devices=k.devices,
        device_memory=budget,
        param_dtype=cfg.model.param_dtype,
        compute_dtype=_dt(k.c) if cfg.model.dtype == "auto" else cfg.model.dtype,
        gradient_checkpointing=k.gc,
        cpu_offload=k.cpu_offload,
        lora_rank=k.lora_rank,
        params=_counts(shape, k),
        prompt_tokens=k.prompt,
        image_tokens=k.image_tokens,
        response_tokens=k.response,
        micro_batch_size=k.micro,
        gen_rows=max(k.gen_rows, k.val_rows),
        rows=rows,
        update_peak=update,
        rollout_peak=rollout,
        peak=peak,
        fits=fits,
        host_bytes=host,
    )
    if k.vllm:
        plan.vllm_utilization, plan.vllm_sleep_level = k.vllm_util, k.vllm_sleep
        plan.vllm_max_utilization = _max_vllm_utilization(shape, k, budget)
        plan.vllm_kv_sequences = vllm_kv_sequences(shape, k)
    if alternatives:
        for label, kw in ALTERNATIVES:
            alt = replace(k, **kw)
            a_peak, a_fits = _evaluate(shape, alt, budget)[4:]
            m, g = _fit_sizes(shape, alt, budget)
            plan.alternatives.append(
                Alternative(label + (" + grad. ckpt" if alt.gc else ""), a_peak, a_fits, m, g)
            )
        plan.suggestions = _suggest(plan, shape, k, budget)
    return plan


def vllm_kv_sequences(s: ModelShape, k: _Setup) -> int:
    """Sequences of prompt + response tokens vLLM's KV cache pool holds at once at utilisation ``k.vllm_util``."""
    pool = k.vllm_util * k.device_memory - s.total * k.c - VLLM_RESERVE
    per_seq = (k.prompt + k.response) * s.layers * 2 * s.kv_dim * k.c
    return max(0, int(pool // per_seq))


def _max_vllm_utilization(s: ModelShape, k: _Setup, budget: int) -> float | None:
    """The largest ``rollout.vllm.gpu_memory_utilization`` (0.01 steps) with which the plan fits and vLLM's KV cache
    holds at least one sequence; None when none does."""
    for hundredths in range(95, 0, -1):
        u = hundredths / 100
        ku = replace(k, vllm_util=u)
        if _evaluate(s, ku, budget)[5] and vllm_kv_sequences(s, ku) >= 1:
            return u
    return None


def _suggest(plan: MemoryPlan, s: ModelShape, k: _Setup, budget: int) -> list[str]:
    if plan.fits:
        return []
    out = []
    update_over = plan.update_peak > budget
    rollout_over = plan.rollout_peak > budget
    phases = [p for p, over in (("update", update_over), ("rollout", rollout_over)) if over]
    out.append(
        f"the {' and '.join(phases)} phase{'s' if len(phases) > 1 else ''} exceed{'' if len(phases) > 1 else 's'} the device"
    )
    if k.vllm and plan.vllm_max_utilization is not None:
        out.append(f"set rollout.vllm.gpu_memory_utilization={plan.vllm_max_utilization:g}")
    elif k.vllm and k.vllm_sleep == 0:
        out.append("no vLLM share fits beside the update: set rollout.vllm.sleep_level=2 (or 1)")
    m, g = _fit_sizes(s, k, budget)
    if m is not None:
        out.append(f"keep the strategy, set {_sizes(m, g, k)}")
    fitting = [a for a in plan.alternatives if a.fits]
    for a in fitting[:3]:
        out.append(f"switch to {a.label} (peak {_gb(a.peak)} GB)")
    if not fitting:
        resized = [a for a in plan.alternatives if a.micro_batch_size is not None]
        resized.sort(key=lambda a: (-(a.gen_batch_size or 0), -(a.micro_batch_size or 0)))
        for a in resized[:3]:
            out.append(f"switch to {a.label} with {_sizes(a.micro_batch_size, a.gen_batch_size, k)}")
    if len(out) == 1:
        out.append("nothing tried fits: add devices, shorten max_new_tokens or lower model.max_pixels")
    return out


def _sizes(m: int | None, g: int | None, k: _Setup) -> str:
    parts = []
    if m != k.micro:
        parts.append(f"optim.micro_batch_size={m}")
    if g is not None and g < max(k.gen_rows, k.val_rows):
        parts.append(f"rollout.gen_batch_size={g}")
        if k.val_rows > g:
            parts.append(f"val.batch_size={g}")
    return " ".join(parts) or "the configured sizes"


# ---------------------------------------------------------------------------------------------- output
def _dt(nbytes: int) -> str:
    return {4: "float32", 2: "bfloat16"}.get(nbytes, f"{nbytes} B")


def _gb(x: int) -> str:
    return f"{x / GB:.1f}"


def _count(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:.2f} B"
    if n >= 10**6:
        return f"{n / 1e6:.2f} M"
    return f"{n:,}"


def format_plan(plan: MemoryPlan) -> str:
    """A readable table (GB = 10⁹ bytes per device), the verdict, and what to change when it does not fit."""
    pc = plan.params
    how = plan.strategy + (" + cpu_offload" if plan.cpu_offload else "")
    if plan.lora_rank:
        how += f", LoRA r={plan.lora_rank}"
    lines = [
        f"memory plan: {plan.model}",
        f"  parameters {_count(pc.total)} (vision {_count(pc.vision)}, language {_count(pc.language)}); "
        f"trainable {_count(pc.trainable)}" + (f" (LoRA {_count(pc.lora)})" if pc.lora else ""),
        f"  {how} on {plan.devices} device(s) of {_gb(plan.device_memory)} GB; params {plan.param_dtype}, "
        f"compute {plan.compute_dtype}; gradient checkpointing {'on' if plan.gradient_checkpointing else 'off'}",
        f"  sequence {plan.seq_len} = prompt {plan.prompt_tokens} ({TEXT_PROMPT_TOKENS} text + "
        f"{plan.image_tokens} image) + response {plan.response_tokens}; micro-batch {plan.micro_batch_size}, "
        f"generation rows {plan.gen_rows}",
        "",
        f"  {'':44s} {'phase':8s} {'GB/device':>10s}",
    ]
    for r in plan.rows:
        lines.append(f"  {r.label:44s} {r.phase:8s} {_gb(r.bytes):>10s}")
    lines.append(f"  {'peak of the update phase':44s} {'':8s} {_gb(plan.update_peak):>10s}")
    lines.append(f"  {'peak of the rollout phase':44s} {'':8s} {_gb(plan.rollout_peak):>10s}")
    if plan.host_bytes:
        lines.append(f"  CPU memory per process (offloaded state): {_gb(plan.host_bytes)} GB")
    lines.append("")
    if plan.vllm_utilization is not None:
        most = "none" if plan.vllm_max_utilization is None else f"{plan.vllm_max_utilization:g}"
        lines.append(
            f"  vLLM: gpu_memory_utilization {plan.vllm_utilization:g} ({_gb(int(plan.vllm_utilization * plan.device_memory))} GB), "
            f"sleep level {plan.vllm_sleep_level}; its KV cache holds {plan.vllm_kv_sequences} sequences of "
            f"{plan.seq_len} tokens at once; the largest utilisation that fits: {most}"
        )
    if plan.fits:
        lines.append(f"verdict: FITS — peak {_gb(plan.peak)} GB of {_gb(plan.device_memory)} GB per device")
    else:
        lines.append(
            f"verdict: DOES NOT FIT — peak {_gb(plan.peak)} GB > {_gb(plan.device_memory)} GB per device"
        )
    if plan.alternatives:
        lines += ["", "  alternatives (peak at the configured sizes; largest micro / gen batch that fit):"]
        for a in plan.alternatives:
            sizes = (
                f"micro {a.micro_batch_size}, gen {a.gen_batch_size}" if a.micro_batch_size else "none fit"
            )
            lines.append(f"    {a.label:36s} {_gb(a.peak):>7s} GB  {'fits' if a.fits else 'no  '}  {sizes}")
    if plan.suggestions:
        lines += ["", "  to fit:"] + [f"    - {s}" for s in plan.suggestions]
    lines.append("  (an estimate that errs high; formulas: mssr.trainer.memory, docs/memory.md)")
    return "\n".join(lines)


def preflight(cfg: Any, *, world_size: int, device: Any) -> MemoryPlan | None:
    """The trainer's start-up check: on a CUDA device, plan against its total memory and raise
    :class:`MemoryPlanError` (the formatted plan) when it does not fit. CPU (or ``MSSR_MEMORY_CHECK=0``):
    None, no check."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or os.environ.get("MSSR_MEMORY_CHECK", "1") == "0":
        return None
    total = torch.cuda.get_device_properties(dev).total_memory
    plan = plan_memory(cfg, devices=world_size, device_memory_gb=total / GB, alternatives=False)
    if not plan.fits:
        plan = plan_memory(cfg, devices=world_size, device_memory_gb=total / GB)
        raise MemoryPlanError(
            format_plan(plan) + "\n(set MSSR_MEMORY_CHECK=0 to start anyway: the plan errs high)"
        )
    return plan


__all__ = [
    "Alternative",
    "MemoryPlan",
    "MemoryPlanError",
    "ModelShape",
    "ParamCounts",
    "Row",
    "analyse",
    "format_plan",
    "model_shape",
    "plan_memory",
    "preflight",
]
