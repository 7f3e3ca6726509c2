"""Scale check: MSSR training steps of a randomly initialised Qwen2.5-VL of a real shape, timed and measured
against ``mssr plan``'s memory estimate for the same config and device count.

    python bench/scale_check.py                            # CPU: shrunken 3B shape, ~15-30 s
    python bench/scale_check.py --shape qwen2.5-vl-7b --steps 2 --out scale.json
    torchrun --nproc_per_node 8 bench/scale_check.py --shape qwen2.5-vl-7b --strategy fsdp \\
        --gradient-checkpointing --rollouts 256 --max-new-tokens 2048       # the intended GPU run

The policy is built locally: the shape's architecture (``mssr.models.shapes``; ``--shrink``, automatic on CPU,
keeps the family but scales layers and widths down), weights randomly initialised directly on the device in
the parameter dtype, mssr's small byte-level BPE tokenizer and the Qwen2-VL image processor. The model keeps
the real vocabulary (151936 / 152064 rows) on a GPU; the tokenizer has ~760 tokens, so a forward hook on the
LM head sets the logits of ids the tokenizer cannot decode to -1e4 (probability exactly 0 in float32): the
sampler never draws them and the trainer's teacher-forced log-probs see the same distribution, at the cost
of the full-vocabulary LM head. (The engine's suppress list would do the same but converts the id list to a
tensor on every decoding step, ~60 ms per step for 150k ids on a CPU.) On CPU the shrunken shape's
vocabulary is the tokenizer's (``--keep-vocab`` keeps the real one).

The training config is the paper's (``configs/paper/qwen2_5_vl_{3b,7b}_mssr.yaml``: MSSR, kl_window ρ with a
reference model, bf16 compute over fp32 master weights, recomputed old log-probs) with sizes from the flags;
no validation, checkpoints or logging. The tracker's initial pass (one rollout per training prompt, once per
run) is not run: the steps start from the prior. A random model rarely emits EOS, so responses run to
``--max-new-tokens``: the worst case for time and memory.

Per step: step time and its stages (the trainer's ``timing_s/*``), generated tokens/s (response tokens of all
ranks / generation time), trained tokens/s (response tokens in the loss / update time; ``seq`` counts prompt +
response tokens), and peak memory next to the plan's peak per device: on a GPU
``torch.cuda.max_memory_allocated`` since the step began (max over ranks; the plan adds 3 GB fixed + 10 %
fragmentation that the allocator's count does not see); on CPU the process's peak RSS so far
(``getrusage``), which includes Python, torch and the data, so there the ratio is only a smoke value.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import torch

ROOT = Path(__file__).resolve().parents[1]
GB = 10**9
REAL_SHAPES = {"qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct", "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct"}
PRESET_SHAPES = ("tiny", "small", "base")
SHAPE_NAMES = (*REAL_SHAPES, *PRESET_SHAPES)
PAPER_CONFIG = {
    "qwen2.5-vl-3b": ROOT / "configs/paper/qwen2_5_vl_3b_mssr.yaml",
    "qwen2.5-vl-7b": ROOT / "configs/paper/qwen2_5_vl_7b_mssr.yaml",
}
MASK_LOGIT = (
    -1e4
)  # exp(-1e4) is 0 in float32: an id with this logit is never sampled and scores log-prob -1e4
TOKENIZER_VOCAB = 1024  # build_tiny_policy's target size (the corpus gives ~760 tokens)
FILLER = " red"  # one token in mssr's tokenizer; pads the system prompt to --prompt-tokens

# The shrunken shape (--shrink): the same family (GQA ratio, MLP ratio, M-RoPE 2:3:3, patch 14, merge 2,
# window attention with a final full-attention block, tied embeddings as the real model), small sizes.
SHRINK = {
    "text_layers": 2,
    "text_hidden": 128,
    "text_heads": 4,
    "vision_depth": 2,
    "vision_hidden": 64,
    "vision_heads": 4,
}


# ---------------------------------------------------------------------------------------------- the model
def _round_to(x: float, m: int) -> int:
    return max(m, round(x / m) * m)


def _mrope_section(head_dim: int) -> list[int]:
    """head_dim/2 rotary frequencies over (time, height, width) in Qwen's 2:3:3 ratio (128 → [16, 24, 24])."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def model_config(
    shape: str,
    *,
    token_ids: dict[str, int],
    vocab_size: int | None = None,
    shrink: bool = False,
) -> Any:
    """The ``Qwen2_5_VLConfig`` the script builds: `shape`'s architecture with the special-token ids of the
    tokenizer in use (`token_ids`: Qwen special token → id); `vocab_size` None keeps the shape's vocabulary.
    ``shrink`` scales a real shape down to :data:`SHRINK` (presets are small already and ignore it)."""
    from transformers import Qwen2_5_VLConfig

    from mssr.models.presets import get_preset, make_config
    from mssr.models.shapes import shape_config

    if shape in PRESET_SHAPES:
        p = get_preset(shape)
        return make_config(p, token_ids=token_ids, vocab_size=vocab_size or p.vocab_size)
    if shape not in REAL_SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPE_NAMES)}")
    real = shape_config(REAL_SHAPES[shape])
    text = {
        k: v
        for k, v in real.text_config.to_dict().items()
        if k not in ("layer_types", "transformers_version")
    }
    vision = {k: v for k, v in real.vision_config.to_dict().items() if k != "transformers_version"}
    text.update(
        bos_token_id=None,
        eos_token_id=token_ids["<|im_end|>"],
        pad_token_id=token_ids["<|endoftext|>"],
    )
    if vocab_size is not None:
        text["vocab_size"] = vocab_size
    if shrink:
        s = SHRINK
        heads = s["text_heads"]
        kv = max(1, heads * text["num_key_value_heads"] // text["num_attention_heads"])
        mlp_ratio = text["intermediate_size"] / text["hidden_size"]
        v_ratio = vision["intermediate_size"] / vision["hidden_size"]
        text.update(
            hidden_size=s["text_hidden"],
            num_hidden_layers=s["text_layers"],
            num_attention_heads=heads,
            num_key_value_heads=kv,
            intermediate_size=_round_to(mlp_ratio * s["text_hidden"], 16),
            rope_parameters={
                **text["rope_parameters"],
                "mrope_section": _mrope_section(s["text_hidden"] // heads),
            },
        )
        vision.update(
            depth=s["vision_depth"],
            hidden_size=s["vision_hidden"],
            num_heads=s["vision_heads"],
            intermediate_size=_round_to(v_ratio * s["vision_hidden"], 16),
            fullatt_block_indexes=[s["vision_depth"] - 1],
        )
    vision["out_hidden_size"] = text["hidden_size"]
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=real.tie_word_embeddings,
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
    )


def mask_unknown_ids(model: torch.nn.Module, n_known: int) -> Any:
    """Make ids ≥ `n_known` (rows the tokenizer cannot decode) unsampleable: the LM head's logits there are set
    to :data:`MASK_LOGIT` in place (the linear layer's backward does not need its output). Returns the hook
    handle; nothing is registered when the vocabulary is not larger than `n_known`."""
    head = model.get_output_embeddings()
    if head.out_features <= n_known:
        return None

    def hook(module: torch.nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        out[..., n_known:] = MASK_LOGIT
        return out

    return head.register_forward_hook(hook)


def build_policy(
    shape: str,
    *,
    shrink: bool,
    keep_vocab: bool,
    image_size: int,
    device: torch.device,
    dtype: torch.dtype,
    seed: int = 0,
) -> Any:
    """A :class:`~mssr.models.Policy` of `shape`, randomly initialised on `device` in `dtype` (no CPU copy on a
    GPU), with mssr's tokenizer and the Qwen2-VL image processor at a fixed ``image_size``² pixels."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from mssr.models import Policy
    from mssr.models.policy import _generation_config, default_tokenizer_corpus
    from mssr.models.presets import get_preset
    from mssr.models.processor import Qwen2_5_VLImageOnlyProcessor, build_image_processor
    from mssr.models.tokenizer import SPECIAL_TOKENS, build_tokenizer

    if shape in PRESET_SHAPES:
        p = get_preset(shape)
        patch, merge = p.patch_size, p.merge_size
    else:
        patch, merge = 14, 2
    if image_size % (patch * merge):
        raise ValueError(f"--image-size {image_size} must be a multiple of patch*merge={patch * merge}")
    tokenizer = build_tokenizer(default_tokenizer_corpus(), vocab_size=TOKENIZER_VOCAB)
    image_processor = build_image_processor(
        patch_size=patch, merge_size=merge, min_pixels=image_size**2, max_pixels=image_size**2
    )
    processor = Qwen2_5_VLImageOnlyProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    small_vocab = shape in PRESET_SHAPES or (shrink and not keep_vocab)
    config = model_config(
        shape, token_ids=ids, vocab_size=len(tokenizer) if small_vocab else None, shrink=shrink
    )
    default = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
        torch.manual_seed(seed)
        with device:
            model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    model.eval()
    model.generation_config = _generation_config(ids)
    mask_unknown_ids(model, len(tokenizer))
    info = {
        "shape": shape,
        "shrunk": shrink and shape in REAL_SHAPES,
        "image_size": image_size,
        "seed": seed,
        "vocab_size": config.get_text_config().vocab_size,
        "tokenizer_size": len(tokenizer),
    }
    return Policy(model=model, processor=processor, info=info)


# ---------------------------------------------------------------------------------------------- the run
def _pad_system_prompt(
    records: list[Any], processor: Any, target: int, instruction: str | None = "default"
) -> tuple[str, int]:
    """A system prompt that brings the text part of the first record's prompt (everything but the image
    tokens: chat scaffolding, system prompt, question, instruction, vision start/end) to ≈ `target` tokens,
    and that length (the default system prompt's when that is already longer)."""
    from mssr.models.chat import DEFAULT_SYSTEM_PROMPT
    from mssr.rollout.prompting import records_to_prompts

    rec = records[0]

    def n_tokens(system: str) -> int:
        p = records_to_prompts([rec], processor, instruction=instruction, system_prompt=system)[0]
        # the unexpanded text holds one image placeholder per image
        return len(processor.tokenizer(p.text)["input_ids"]) - len(p.images)

    system = DEFAULT_SYSTEM_PROMPT
    n = n_tokens(system)
    for _ in range(3):  # each filler word is one token; another pass absorbs merges at the boundary
        if n >= target:
            break
        system += FILLER * (target - n)
        n = n_tokens(system)
    return system, n


def _rss_gb() -> float:
    """Peak resident set size of this process so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB


def _device_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / GB
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=SHAPE_NAMES, default="qwen2.5-vl-3b")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument(
        "--shrink",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="scale the real shape down (default: on CPU yes, on a GPU no)",
    )
    ap.add_argument("--keep-vocab", action="store_true", help="shrunken shape: keep the real vocabulary")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument(
        "--rollouts", type=int, default=None, help="rollouts per step (GPU 256, CPU 8; paper 2048)"
    )
    ap.add_argument(
        "--prompt-tokens", type=int, default=None, help="text tokens per prompt (GPU 256, CPU 128)"
    )
    ap.add_argument("--image-size", type=int, default=None, help="square image side in px (GPU 980, CPU 56)")
    ap.add_argument(
        "--max-new-tokens", type=int, default=None, help="response limit (GPU 2048 = paper, CPU 16)"
    )
    ap.add_argument("--micro-batch", type=int, default=4, help="sequences per forward/backward (paper 4)")
    ap.add_argument("--gen-batch", type=int, default=None, help="rollouts per generation call per rank (256)")
    ap.add_argument("--mini-batch-prompts", type=int, default=None, help="prompts per optimizer update (128)")
    ap.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp")
    ap.add_argument(
        "--engine",
        choices=("hf", "vllm"),
        default="hf",
        help="rollout engine: hf = the built-in one (default); vllm = the paper configs' colocated vLLM",
    )
    ap.add_argument(
        "--dtype", default=None, help="compute dtype: bfloat16 (GPU default) | float32 (CPU default)"
    )
    ap.add_argument("--param-dtype", default="float32", help="master weights (float32 | bfloat16)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="CPU intra-op threads (default: torch's)")
    ap.add_argument("--workdir", type=Path, default=None, help="data and configs (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)
    return args


def _resolve(args: argparse.Namespace, device: torch.device) -> argparse.Namespace:
    gpu = device.type == "cuda"
    if args.shrink is None:
        args.shrink = not gpu and args.shape in REAL_SHAPES
    defaults = {
        "rollouts": 256 if gpu else 8,
        "prompt_tokens": 256 if gpu else 128,
        "image_size": (980 if gpu else 56) if args.shape in REAL_SHAPES else 64,
        "max_new_tokens": 2048 if gpu else 16,
        "dtype": "bfloat16" if gpu else "float32",
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def train_config(
    args: argparse.Namespace, *, model_dir: Path, data_dir: Path, out_dir: Path, world: int
) -> Any:
    """The paper's MSSR config with the flags' sizes, pointing at the built model's config.json (so the memory
    plan sizes the same architecture) and the generated data."""
    from mssr.config import load_config
    from mssr.trainer.config import TrainConfig

    local = args.rollouts // world
    gen = args.gen_batch or min(local, 256)
    mini = args.mini_batch_prompts or min(128, args.rollouts)
    overrides = [
        f"model.path={model_dir}",
        f"model.dtype={args.dtype}",
        f"model.param_dtype={args.param_dtype}",
        f"model.gradient_checkpointing={str(args.gradient_checkpointing).lower()}",
        f"model.lora_rank={args.lora_rank}",
        f"model.min_pixels={args.image_size**2}",
        f"model.max_pixels={args.image_size**2}",
        f"data.train={data_dir}",
        "data.val=null",
        f"output_dir={out_dir}",
        f"device={args.device}",
        f"seed={args.seed}",
        f"steps={args.steps}",
        f"parallel.strategy={args.strategy}",
        f"rollout.rollouts_per_step={args.rollouts}",
        f"rollout.max_new_tokens={args.max_new_tokens}",
        f"rollout.gen_batch_size={gen}",
        f"optim.micro_batch_size={args.micro_batch}",
        f"optim.mini_batch_prompts={mini}",
        "val.every=0",
        "val.at_start=false",
        f"val.batch_size={gen}",
        "checkpoint.every=0",
        "logging.progress=false",
        "logging.tensorboard=false",
        "logging.plot=false",
        "logging.collapse_warning=false",
    ]
    if args.engine == "hf":  # the built-in engine (the paper configs name vLLM, with its sleep mode)
        overrides += ["rollout.engine=hf", "rollout.vllm.sleep_level=0"]
    if args.threads:
        overrides.append(f"threads={args.threads}")
    paper = PAPER_CONFIG.get(args.shape, PAPER_CONFIG["qwen2.5-vl-3b"])
    return load_config(TrainConfig, paper, overrides)


def plan_for(cfg: Any, *, world: int, device: torch.device, text_tokens: int) -> tuple[Any, str]:
    """``mssr plan``'s estimate (and its table) for `cfg` on `world` devices like `device`."""
    from mssr.trainer import memory

    # the plan assumes 256 text tokens per prompt; size it for the prompts this run actually has
    with mock.patch.object(memory, "TEXT_PROMPT_TOKENS", text_tokens):
        p = memory.plan_memory(
            cfg, devices=world, device_memory_gb=_device_memory_gb(device), alternatives=False
        )
        return p, memory.format_plan(p)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mssr.data import load_records
    from mssr.data.builtin import generate_dataset
    from mssr.trainer import distributed as dist
    from mssr.trainer.trainer import RLTrainer, resolve_device

    device = resolve_device(args.device)
    args.device = device.type
    args = _resolve(args, device)
    dist.init_from_env(device)
    world, main = dist.world_size(), dist.is_main()
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    if args.rollouts % world:
        raise SystemExit(f"--rollouts {args.rollouts} must be a multiple of the {world} ranks")
    if args.threads:
        torch.set_num_threads(args.threads)
    say = print if main else (lambda *a, **k: None)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="mssr-scale-"))
    work = work / f"rank{dist.rank()}"
    rss_start = _rss_gb()
    t0 = time.perf_counter()
    generate_dataset(
        work / "data", n_train=args.rollouts, n_val=0, n_test=0, seed=args.seed, image_size=args.image_size
    )
    records = load_records(work / "data", "train")
    t_data = time.perf_counter() - t0

    param_dtype = getattr(torch, args.param_dtype)
    t0 = time.perf_counter()
    policy = build_policy(
        args.shape,
        shrink=args.shrink,
        keep_vocab=args.keep_vocab,
        image_size=args.image_size,
        device=device,
        dtype=param_dtype,
        seed=args.seed,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_build = time.perf_counter() - t0
    policy.model.config.save_pretrained(work / "model")  # config.json only: what the memory plan reads
    cfg = train_config(
        args, model_dir=work / "model", data_dir=work / "data", out_dir=work / "run", world=world
    )
    system, text_tokens = _pad_system_prompt(
        records, policy.processor, args.prompt_tokens, instruction=cfg.data.instruction
    )
    cfg.data.system_prompt = system
    plan, plan_table = plan_for(cfg, world=world, device=device, text_tokens=text_tokens)
    params = policy.num_parameters()
    tc = policy.model.config.get_text_config()
    vc = policy.model.config.vision_config
    image_tokens = (args.image_size // (vc.patch_size * vc.spatial_merge_size)) ** 2

    say(
        f"scale check: {args.shape}{' (shrunk)' if args.shrink else ''}, {params / 1e6:.1f}M parameters "
        f"(text {tc.num_hidden_layers} x {tc.hidden_size}, vocab {tc.vocab_size}, tokenizer "
        f"{len(policy.tokenizer)}; vision {vc.depth} x {vc.hidden_size}) on {world} x {device.type}"
        f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}"
    )
    say(
        f"  built in {t_build:.1f} s ({args.param_dtype}); data {len(records)} items in {t_data:.1f} s; "
        f"prompt ≈ {text_tokens} text + {image_tokens} image tokens, {args.max_new_tokens} new tokens; "
        f"{args.rollouts} rollouts/step, gen batch {cfg.rollout.gen_batch_size}, micro-batch "
        f"{args.micro_batch}, mini-batch {cfg.optim.mini_batch_prompts} prompts; {args.strategy}, compute "
        f"{args.dtype}, grad. ckpt {'on' if args.gradient_checkpointing else 'off'}, LoRA {args.lora_rank}"
    )
    say(plan_table)

    from mssr.trainer import step as step_mod

    trainer = RLTrainer(cfg, policy=policy, train_records=records, val_records=[])
    real_rollout = step_mod.rollout

    def keep_rollout(
        tr: Any, step: int, global_idx: list[int]
    ) -> Any:  # the last step's batch, to count tokens
        trainer.last = real_rollout(tr, step, global_idx)
        return trainer.last

    step_mod.rollout = keep_rollout  # the step looks its stages up in its module
    steps = []
    for step in range(1, args.steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        trainer.step = step
        m = trainer.train_step(step)
        d = trainer.last
        b = d.batch
        prompt_tokens = b.attention_mask[:, : b.prompt_length].sum()
        # ids the tokenizer cannot decode (must stay 0: mask_unknown_ids)
        unknown = ((b.response_ids >= len(policy.tokenizer)) & (b.response_mask > 0)).sum()
        counts = dist.all_reduce_sum(
            torch.tensor(
                [b.response_mask.sum(), d.loss_mask.sum(), prompt_tokens, len(b), unknown],
                dtype=torch.float64,
            )
        ).tolist()
        gen_tok, loss_tok, prompt_tok, rows, unknown = counts
        if device.type == "cuda":
            mem = torch.tensor(
                [torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)],
                dtype=torch.float64,
                device=device,
            )
            peak, reserved = (dist.all_reduce_max(mem) / GB).tolist()
            kind = "cuda max_memory_allocated"
        else:
            peak = float(dist.all_reduce_max(torch.tensor([_rss_gb()], dtype=torch.float64))[0])
            reserved = None
            kind = "peak RSS of the process"
        timing = {k.split("/", 1)[1]: v for k, v in m.items() if k.startswith("timing_s/")}
        plan_peak = plan.peak / GB
        rec = {
            "step": step,
            "timing_s": timing,
            "rollouts": int(rows),
            "generated_tokens": int(gen_tok),
            "generated_tokens_per_s": gen_tok / timing["gen"],
            "trained_tokens": int(loss_tok),
            "trained_tokens_per_s": loss_tok / timing["update"],
            "trained_seq_tokens_per_s": (loss_tok + prompt_tok) / timing["update"],
            "prompt_tokens_mean": prompt_tok / rows,
            "response_length_mean": m["response_length/mean"],
            "unknown_ids_sampled": int(unknown),
            "truncated_frac": m["response_length/clip_ratio"],
            "peak_memory_gb": peak,
            "peak_reserved_gb": reserved,
            "peak_memory_kind": kind,
            "plan_peak_gb": plan_peak,
            "measured_over_planned": peak / plan_peak,
        }
        steps.append(rec)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in timing.items() if k != "step")
        say(
            f"step {step}: {timing['step']:.2f} s ({stages}) | generated {int(gen_tok)} tok, "
            f"{rec['generated_tokens_per_s']:.0f} tok/s | trained {int(loss_tok)} tok, "
            f"{rec['trained_tokens_per_s']:.0f} tok/s ({rec['trained_seq_tokens_per_s']:.0f} with prompts) | "
            f"peak {peak:.2f} GB ({kind}) / plan {plan_peak:.2f} GB = {rec['measured_over_planned']:.2f}"
        )
    later = steps[1:] or steps
    summary = {
        "step_s_median": _median([s["timing_s"]["step"] for s in later]),
        "generated_tokens_per_s_median": _median([s["generated_tokens_per_s"] for s in later]),
        "trained_tokens_per_s_median": _median([s["trained_tokens_per_s"] for s in later]),
        "peak_memory_gb": max(s["peak_memory_gb"] for s in steps),
        "plan_peak_gb": plan.peak / GB,
        "measured_over_planned": max(s["peak_memory_gb"] for s in steps) / (plan.peak / GB),
        "steps_in_medians": [s["step"] for s in later],
    }
    say(
        f"summary (steps {summary['steps_in_medians']}): {summary['step_s_median']:.2f} s/step, "
        f"{summary['generated_tokens_per_s_median']:.0f} generated tok/s, "
        f"{summary['trained_tokens_per_s_median']:.0f} trained tok/s; peak {summary['peak_memory_gb']:.2f} GB "
        f"vs plan {summary['plan_peak_gb']:.2f} GB = {summary['measured_over_planned']:.2f}"
    )
    result = {
        "shape": args.shape,
        "shrunk": bool(args.shrink),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": {
            "parameters": params,
            "vocab_size": tc.vocab_size,
            "tokenizer_size": len(policy.tokenizer),
            "text_layers": tc.num_hidden_layers,
            "text_hidden": tc.hidden_size,
            "vision_depth": vc.depth,
            "vision_hidden": vc.hidden_size,
            "build_s": t_build,
        },
        "prompt": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "machine": {
            "device": device.type,
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor(),
            "world_size": world,
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "rss_at_start_gb": rss_start,
            "load": os.getloadavg()[0],
        },
        "plan": {
            "peak_gb": plan.peak / GB,
            "update_peak_gb": plan.update_peak / GB,
            "rollout_peak_gb": plan.rollout_peak / GB,
            "fits": plan.fits,
            "devices": plan.devices,
            "device_memory_gb": plan.device_memory / GB,
            "strategy": plan.strategy,
            "prompt_tokens": plan.prompt_tokens,
            "response_tokens": plan.response_tokens,
            "rows_gb": {r.key: r.bytes / GB for r in plan.rows},
        },
        "steps": steps,
        "summary": summary,
    }
    if main and args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    from mssr.trainer import distributed as dist

    try:
        run(parse_args(argv))
    finally:
        dist.shutdown()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
