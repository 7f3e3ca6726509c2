"""A `RolloutEngine` backed by vLLM, colocated with the trainer, plus `build_engine` (the trainer's factory).

`VLLMRolloutEngine` holds its own copy of the policy's weights inside an in-process vLLM engine
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``, eager) and returns the same `RolloutBatch` as `HFRolloutEngine`: prompts
are encoded by the same processor (vLLM's own prompt ids are checked against them), rows prompt by prompt,
sampling from exactly ``softmax(logits / temperature)`` with the built-in engine's top-k / top-p, stop tokens and
suppressed vision tokens, and the sampler's per-token log-probs (``logprobs_mode="processed_logprobs"``) in
`rollout_logprobs`. After each update the trainer calls `sync_weights(model)`, which streams the current
weights (plain, LoRA-merged, or FSDP2 gathered tensor by tensor) into vLLM, re-packs a tied LM head and resets
vLLM's prefix and multimodal caches. vLLM is imported lazily: ``import mssr`` never needs it.
See docs/rollout.md "vLLM engine".
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mssr.config import ConfigError
from mssr.models.processor import VIDEO_PROCESSOR_FILE, write_video_processor_config
from mssr.rollout.batch import PromptInput, RolloutBatch
from mssr.rollout.engine import HFRolloutEngine, Prompts, RolloutEngine, Sampling

EngineName = Literal["hf", "vllm"]


def vllm_available() -> tuple[bool, str]:
    """``(True, "")`` when ``import vllm`` works here, else ``(False, why)``."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # an installed but broken vLLM raises more than ImportError
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def vllm_unsupported(config: Any, tokenizer: Any) -> str | None:
    """Why vLLM cannot serve a policy of this config and tokenizer, or ``None`` when nothing is known against it.

    Measured with vllm-cpu 0.32 (tests/rollout/test_vllm_engine.py): Qwen2.5-VL, Qwen3-VL (dense and MoE) and
    Idefics3 tiny policies load and agree with the built-in engine. vLLM's Gemma 3 processor merges newline
    tokens around each image by looking up ``"\n"`` … ``"\n\n\n\n"`` in the vocabulary (Gemma's own
    tokenizer has them); a tokenizer without them (mssr's tiny byte-level ones) fails inside vLLM.
    """
    model_type = getattr(config, "model_type", "")
    if model_type == "gemma3":
        vocab = tokenizer.get_vocab()
        missing = [repr(t) for t in ("\n", "\n\n", "\n\n\n", "\n\n\n\n") if t not in vocab]
        if missing:
            return (
                f"vLLM's Gemma 3 processor needs the newline tokens {', '.join(missing)} in the vocabulary, "
                "which this tokenizer lacks (a real Gemma 3 tokenizer has them; mssr's tiny gemma3 preset's "
                "byte-level one does not): use rollout.engine=hf"
            )
    return None


# ------------------------------------------------------------------------------------------- weights
def _full(t: torch.Tensor) -> torch.Tensor:
    """A DTensor (FSDP2 shard) gathered to the full tensor (a collective: every rank must call it)."""
    full_tensor = getattr(t, "full_tensor", None)
    return (full_tensor() if callable(full_tensor) else t).detach()


def iter_policy_weights(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of the plain HF checkpoint `model` stands for, one tensor at a time.

    A peft model gives its merged weights (`mssr.models.lora.merged_state_dict`: W + ΔW, adapters folded
    away); FSDP2 parameters (DTensors) are gathered one by one, so at most one full tensor exists beyond the
    shards. Names are the HF checkpoint's (what vLLM's loader maps), tied weights listed under every name.
    """
    from mssr.models.lora import base_model, is_lora, merged_state_dict

    state = merged_state_dict(model) if is_lora(model) else base_model(model).state_dict()
    transposed = getattr(base_model(model).config, "model_type", "") in _TRANSPOSED_EXPERTS
    for name, tensor in state.items():
        t = _full(tensor)
        if transposed and t.ndim == 3 and name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            t = t.transpose(1, 2)
        yield name, t


# Families whose fused MoE expert tensors vLLM reads in the hub checkpoints' layout (gate_up_proj
# (experts, hidden, 2·inter), down_proj (experts, inter, hidden)), the transpose of transformers 5's
# in-memory (and save_pretrained) layout
_TRANSPOSED_EXPERTS = frozenset({"qwen3_vl_moe"})


def write_vllm_files(path: str | Path, processor: Any | None = None) -> Path:
    """Add what vLLM needs to load a saved policy directory: config keys vLLM reads (`_patch_config_for_vllm`)
    and ``video_preprocessor_config.json``, derived from
    the image processor (`processor`, else the directory's ``processor_config.json`` /
    ``preprocessor_config.json``). Existing files are kept (policies saved by mssr already have it). Returns the
    file's path."""
    path = Path(path)
    _patch_config_for_vllm(path)
    if (path / VIDEO_PROCESSOR_FILE).is_file():
        return path / VIDEO_PROCESSOR_FILE
    image: dict[str, Any] | None = None
    if processor is not None and getattr(processor, "image_processor", None) is not None:
        image = processor.image_processor.to_dict()
    else:
        for name in ("processor_config.json", "preprocessor_config.json"):
            f = path / name
            if f.is_file():
                data = json.loads(f.read_text(encoding="utf-8"))
                image = data.get("image_processor", data)
                break
    if image is None:
        raise FileNotFoundError(f"{path}: no image processor config to derive {VIDEO_PROCESSOR_FILE} from")
    kind = getattr(processor, "family_video_processor_class", "Qwen2VLVideoProcessor")
    return write_video_processor_config(path, image, kind)


def _patch_config_for_vllm(path: Path) -> None:
    """Config keys vLLM reads that transformers' config lacks. Qwen3-VL MoE: vLLM's MoE block reads
    ``text_config.norm_topk_prob``; transformers' router always renormalises the top-k weights, so it is
    ``true`` (what the hub checkpoints state)."""
    f = path / "config.json"
    if not f.is_file():
        return
    data = json.loads(f.read_text(encoding="utf-8"))
    text = data.get("text_config")
    if data.get("model_type") == "qwen3_vl_moe" and isinstance(text, dict) and "norm_topk_prob" not in text:
        text["norm_topk_prob"] = True
        f.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_policy_dir(path: str | Path, model: nn.Module, processor: Any) -> Path:
    """Write `model` (plain, peft → merged, FSDP2 → gathered) as a checkpoint vLLM loads: ``config.json``,
    ``model.safetensors`` (a tied weight once), the processor's files and `write_vllm_files`'s."""
    from safetensors.torch import save_file

    from mssr.models.lora import base_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _save_config(base_model(model), path)
    processor.save_pretrained(path)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for name, tensor in iter_policy_weights(model):
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key in seen:  # a tied weight (lm_head = embed_tokens): vLLM ties it again from the config
            continue
        seen.add(key)
        tensors[name] = tensor.to("cpu").contiguous()
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    write_vllm_files(path, processor)
    return path


def _save_config(hf: nn.Module, path: Path) -> None:
    """``config.json`` of `hf` with ``architectures`` set (vLLM picks its model class from it): the HF class
    itself, not a wrapper subclass (FSDP2's ``FSDP<class>``)."""
    config = copy.deepcopy(hf.config)
    if not getattr(config, "architectures", None):
        cls = next((c for c in type(hf).__mro__ if c.__module__.startswith("transformers.")), type(hf))
        config.architectures = [cls.__name__]
    config.save_pretrained(path)


def _on_cpu() -> bool:
    """Does vLLM run on its CPU platform here?"""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _refresh_tied_heads(worker: Any) -> int:
    """Worker-side: re-run the quant method's `process_weights_after_loading` on every LM head that shares
    its weight with an input embedding. `reload_weights` processes each parameter once (under the
    embedding's name), so on CPU a tied head would keep the GEMM weights packed from the old embedding."""
    model = worker.model_runner.get_model()
    modules = dict(model.named_modules())
    embeds = {
        id(getattr(m, "weight", None))
        for n, m in modules.items()
        if n.rsplit(".", 1)[-1] == "embed_tokens" and getattr(m, "weight", None) is not None
    }
    refreshed = 0
    for name, module in modules.items():
        if name.rsplit(".", 1)[-1] != "lm_head" or id(getattr(module, "weight", None)) not in embeds:
            continue
        method = getattr(module, "quant_method", None)
        if method is not None and hasattr(method, "process_weights_after_loading"):
            method.process_weights_after_loading(module)
            refreshed += 1
    return refreshed


# ------------------------------------------------------------------------------------------- engine
def _policy_directory(
    model: nn.Module, processor: Any, policy_dir: str | Path | None
) -> tuple[Path, Path | None]:
    """The directory vLLM loads the policy from, and the engine's own temporary one (to delete) or None.

    A given ``policy_dir`` holding a saved policy is used as is; otherwise the model is written there (or to a
    temporary directory). A Qwen3-VL MoE policy is always written by the engine: a saved one holds its experts
    in transformers' layout, not the one vLLM reads (:func:`iter_policy_weights` transposes them)."""
    from mssr.models.lora import base_model

    own_files = base_model(model).config.model_type in _TRANSPOSED_EXPERTS
    own_dir = None
    if policy_dir is not None and (Path(policy_dir) / "config.json").is_file() and not own_files:
        directory = Path(policy_dir)
    else:
        directory = (
            Path(policy_dir)
            if policy_dir is not None and not own_files
            else Path(tempfile.mkdtemp(prefix="mssr-vllm-"))
        )
        if policy_dir is None or own_files:
            own_dir = directory
        write_policy_dir(directory, model, processor)
    write_vllm_files(directory, processor)
    return directory, own_dir


def _dtype_name(dtype: torch.dtype | str) -> str:
    """vLLM's name of a dtype: ``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype


def _set_vllm_environment(cpu_kv_cache_gib: float) -> None:
    """vLLM in-process (weights are streamed by reference); on CPU its KV cache size and no thread pinning of
    the trainer's process."""
    if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "0") != "0":
        warnings.warn(
            "VLLMRolloutEngine runs vLLM in-process (weights are streamed by reference): "
            "setting VLLM_ENABLE_V1_MULTIPROCESSING=0",
            stacklevel=3,
        )
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{cpu_kv_cache_gib:g}")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


def _load_error(exc: Exception, config: Any) -> ConfigError:
    """vLLM could not start on this policy: a one-line configuration error naming the way out."""
    import vllm

    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return ConfigError(
        f"rollout.engine=vllm: vLLM {vllm.__version__} could not load this "
        f"{getattr(config, 'model_type', '?')} policy ({type(exc).__name__}: {first}); "
        "use rollout.engine=hf"
    )


class VLLMRolloutEngine(RolloutEngine):
    """`RolloutEngine` on vLLM (in-process, eager); same `generate` and `RolloutBatch` as `HFRolloutEngine`.

    Args:
        model: the trainer's policy (plain HF, peft, or FSDP2-sharded); its weights are streamed into vLLM at
            start-up and by `sync_weights`. Only its config and current weights are read.
        processor: the policy's processor (prompts are encoded with it; saved next to the config for vLLM).
        suppress_token_ids: as `HFRolloutEngine` (``None`` = the vision special tokens).
        policy_dir: the directory vLLM loads. ``None`` writes the model's current weights, config and
            processor to a temporary directory (`write_policy_dir`; removed by `close`); a directory holding
            a saved policy (``config.json``) is loaded as it is, after `write_vllm_files` adds what vLLM needs
            (its weights should be the model's: the first `sync_weights` makes them so).
        dtype: vLLM's compute dtype; ``None`` = the model's parameter dtype.
        max_model_len: longest prompt + response; ``None`` = the model config's.
        max_images_per_prompt: vLLM's ``limit_mm_per_prompt`` for images (videos: 0).
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights + KV cache) when colocated on a
            GPU; ignored on CPU, where ``cpu_kv_cache_gib`` sizes the KV cache (``VLLM_CPU_KVCACHE_SPACE``).
        enable_sleep_mode: let `sleep` / `wake_up` free vLLM's GPU memory during the update (GPUs only).
        sleep_level: what `before_update` frees (0 = nothing; 1 = weights offloaded, KV cache dropped; 2 = both
            dropped, since `after_update` loads the weights anyway); > 0 implies `enable_sleep_mode`.
        seed: vLLM's engine seed.
        llm_kwargs: more ``vllm.LLM`` arguments (override the above).
    """

    def __init__(
        self,
        model: nn.Module,
        processor: Any,
        *,
        suppress_token_ids: Sequence[int] | None = None,
        policy_dir: str | Path | None = None,
        dtype: torch.dtype | str | None = None,
        max_model_len: int | None = None,
        max_images_per_prompt: int = 4,
        gpu_memory_utilization: float = 0.3,
        cpu_kv_cache_gib: float = 1.0,
        enable_sleep_mode: bool = False,
        sleep_level: int = 0,
        enforce_eager: bool = True,
        seed: int = 0,
        llm_kwargs: dict[str, Any] | None = None,
    ):
        from mssr.models.lora import base_model

        self.model = model
        self.processor = processor
        # the built-in engine's encoding, EOS / pad / suppressed ids and batch assembly, so both agree exactly
        self._hf = HFRolloutEngine(base_model(model), processor, suppress_token_ids=suppress_token_ids)
        self.tokenizer = self._hf.tokenizer
        self.suppress_token_ids = self._hf.suppress_token_ids
        self.eos_token_ids = list(self._hf.eos_token_ids)
        self.pad_token_id = self._hf.pad_token_id
        self.last_sync_s: float | None = None
        self._sleeping = False
        self.sleep_level = sleep_level
        self.sleeps = sleep_level > 0

        config = base_model(model).config
        why = vllm_unsupported(config, self.tokenizer)
        if why is not None:
            raise ConfigError(f"rollout.engine=vllm cannot serve this {config.model_type} policy: {why}")
        text_config = getattr(config, "text_config", config)
        self.vocab_size = int(getattr(text_config, "vocab_size", None) or len(self.tokenizer))
        suppressed = set(self.suppress_token_ids)
        self._allowed = [i for i in range(self.vocab_size) if i not in suppressed] if suppressed else None

        self.policy_dir, self._own_dir = _policy_directory(model, processor, policy_dir)
        _set_vllm_environment(cpu_kv_cache_gib)

        from vllm import LLM

        kwargs: dict[str, Any] = dict(
            model=str(self.policy_dir),
            dtype=_dtype_name(dtype if dtype is not None else next(model.parameters()).dtype),
            enforce_eager=enforce_eager,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            # sampling defaults from the checkpoint's generation_config (repetition penalty, top-k …) would
            # change the distribution (docs/platform.md pitfall 1): vLLM's neutral defaults instead
            generation_config="vllm",
            logprobs_mode="processed_logprobs",  # the distribution actually sampled from
            limit_mm_per_prompt={"image": max_images_per_prompt, "video": 0},
            enable_sleep_mode=enable_sleep_mode or sleep_level > 0,
            # vLLM 0.32 on CPU: a seeded request whose prefill is chunked fails ("CPU Generator does not use
            # offset"); whole prefills avoid it (a long prompt must then fit max_num_batched_tokens)
            enable_chunked_prefill=False,
        )
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(llm_kwargs or {})
        threads = torch.get_num_threads()
        start = time.perf_counter()
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:
            if self._own_dir is not None:
                shutil.rmtree(self._own_dir, ignore_errors=True)
            raise _load_error(exc, config) from exc
        self.startup_s = time.perf_counter() - start
        if torch.get_num_threads() != threads:  # vLLM's CPU worker may change the process-wide setting
            torch.set_num_threads(threads)

    # ------------------------------------------------------------------------------------------ weights
    def sync_weights(self, model: nn.Module | None = None) -> float:
        """Load `model`'s current weights (default: the model given at construction) into vLLM; returns the
        seconds it took (the trainer logs it as ``timing_s/sync``).

        The tensors are streamed one at a time through ``collective_rpc("reload_weights")`` (LoRA: merged;
        FSDP2: gathered per tensor, so call it on every rank), then a tied LM head is re-packed and the prefix
        and multimodal caches are reset, so no response is computed from stale weights or cached prompts.
        """
        from mssr.models.lora import base_model

        model_type = getattr(base_model(self.model).config, "model_type", "?")
        if model_type in _TRANSPOSED_EXPERTS and _on_cpu():
            raise ConfigError(
                f"rollout.engine=vllm: vLLM-CPU cannot update a {model_type} policy's weights in place (its "
                "fused-expert reload fails for the tiny preset, and with 32-aligned experts runs but leaves "
                "log-probs off by 2e-3); use rollout.engine=hf"
            )
        start = time.perf_counter()
        weights = iter_policy_weights(self.model if model is None else model)
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        except Exception as exc:
            import vllm

            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ConfigError(
                f"rollout.engine=vllm: vLLM {vllm.__version__} could not reload the {model_type} policy's "
                f"weights in place ({type(exc).__name__}: {first}); use rollout.engine=hf"
            ) from exc
        self.tied_heads_refreshed = sum(self.llm.collective_rpc(_refresh_tied_heads))
        self.reset_caches()
        self.last_sync_s = time.perf_counter() - start
        return self.last_sync_s

    shares_weights = False  # its own copy of the weights: loaded after every update

    def sync(self, model: nn.Module | None = None) -> float:
        """Load `model`'s weights (:meth:`sync_weights`); returns the seconds it took."""
        return self.sync_weights(model)

    def before_update(self) -> None:
        """Free vLLM's GPU memory for the update (``sleep_level`` > 0)."""
        if self.sleeps:
            self.sleep(level=self.sleep_level)

    def after_update(self, model: nn.Module) -> float:
        """Wake up (if asleep) and load the updated weights; returns the seconds it took."""
        start = time.perf_counter()
        self.wake_up()
        self.sync_weights(model)
        return time.perf_counter() - start

    def reset_caches(self) -> None:
        """Drop vLLM's prefix (KV) cache and its multimodal / encoder caches."""
        self.llm.reset_prefix_cache()
        self.llm.reset_mm_cache()
        self.llm.llm_engine.reset_encoder_cache()  # the scheduler's record too, not only the worker's outputs

    def sleep(self, level: int = 1) -> None:
        """Free vLLM's GPU memory while the trainer updates (``enable_sleep_mode=True``; a no-op on CPU)."""
        if not self._sleeping:
            self.llm.sleep(level=level)
            self._sleeping = True

    def wake_up(self) -> None:
        if self._sleeping:
            self.llm.wake_up()
            self._sleeping = False

    def close(self) -> None:
        """Shut vLLM down and remove the temporary policy directory."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            self.llm = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    # ----------------------------------------------------------------------------------------- generate
    def _sampling_params(self, s: Sampling, *, seed: int) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            n=s.n,
            temperature=0.0 if s.greedy else s.temperature,
            top_p=1.0 if s.greedy else s.top_p,
            top_k=0 if s.greedy else s.top_k,
            min_p=0.0,
            repetition_penalty=1.0,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            max_tokens=s.max_new_tokens,
            min_tokens=0,
            stop_token_ids=list(self.eos_token_ids),
            ignore_eos=False,
            allowed_token_ids=self._allowed,
            logprobs=0,  # the sampled token's log-prob only
            seed=seed,
            detokenize=False,
        )

    def _sample(self, prompts: Prompts, sampling: Sampling) -> RolloutBatch:
        """`RolloutEngine.generate` (arguments checked); `rollout_logprobs` is filled unless
        ``return_logprobs=False``.

        vLLM schedules the rows itself, so `batch_size` only has to be valid. `seed` seeds prompt i's requests
        with ``seed + i*n`` (vLLM gives sample j ``+ j``); ``None`` draws the seed from torch's global RNG, so
        ``torch.manual_seed`` makes a call reproducible as with the built-in engine. Streams differ from the
        built-in engine's: only greedy outputs are comparable token for token.
        """
        hf = self._hf
        n = sampling.n
        seed, return_logprobs = sampling.seed, sampling.logprobs is not False
        if self.llm is None:
            raise RuntimeError("VLLMRolloutEngine.generate after close()")
        hf.check_prompts(prompts)
        self.wake_up()

        prompt_ids, mm_types, store = hf.encode(prompts)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        requests: list[dict[str, Any]] = []
        params = []
        for i, p in enumerate(prompts):
            request: dict[str, Any] = {"prompt": p.text}
            if p.images:
                request["multi_modal_data"] = {"image": list(p.images)}
            requests.append(request)
            params.append(self._sampling_params(sampling, seed=(seed + i * n) % (2**31 - 1)))
        outputs = self.llm.generate(requests, params, use_tqdm=False)

        slots = [i for i in range(len(prompts)) for _ in range(n)]
        response, lps = self._responses(outputs, prompts, prompt_ids, n, return_logprobs)
        return hf.assemble(
            prompts,
            n,
            slots,
            prompt_ids,
            mm_types,
            store,
            [response],
            [lps] if return_logprobs else [],
            1.0 if sampling.greedy else sampling.temperature,
        )

    def _responses(
        self,
        outputs: list[Any],
        prompts: Sequence[PromptInput],
        prompt_ids: list[torch.Tensor],
        n: int,
        lps: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """vLLM's completions as ``[rows, T]`` response ids (right-padded) and sampled-token log-probs (zeros
        without ``lps``), rows in prompt order, each prompt's ``n`` samples by index; checks that vLLM tokenised
        every prompt as the processor did."""
        rows: list[list[int]] = []
        row_lps: list[list[float]] = []
        for i, out in enumerate(outputs):
            vllm_ids = list(out.prompt_token_ids or [])
            if vllm_ids != prompt_ids[i].tolist():
                raise RuntimeError(
                    f"prompt {i} (key {prompts[i].key!r}): vLLM's prompt token ids differ from the processor's "
                    f"({len(vllm_ids)} vs {prompt_ids[i].numel()} tokens); check the policy directory's processor"
                )
            completions = sorted(out.outputs, key=lambda c: c.index)
            if len(completions) != n:
                raise RuntimeError(f"prompt {i}: vLLM returned {len(completions)} samples, expected {n}")
            for c in completions:
                ids = list(c.token_ids)
                rows.append(ids)
                if lps:
                    if c.logprobs is None or len(c.logprobs) != len(ids):
                        raise RuntimeError(f"prompt {i}: vLLM returned no log-prob for some sampled tokens")
                    row_lps.append([float(step[tok].logprob) for tok, step in zip(ids, c.logprobs)])
        t = max(1, max(len(r) for r in rows))
        response = torch.full((len(rows), t), self.pad_token_id, dtype=torch.long)
        logprobs = torch.zeros((len(rows), t))
        for r, ids in enumerate(rows):
            response[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            if lps:
                logprobs[r, : len(ids)] = torch.tensor(row_lps[r])
        return response, logprobs


class VLLMUnavailable(ImportError, ConfigError):
    """rollout.engine=vllm where vLLM cannot be imported: a config mistake (one line from the CLI)."""


def build_engine(
    name: EngineName | str,
    model: nn.Module,
    processor: Any,
    *,
    suppress_token_ids: Sequence[int] | None = None,
    share_prompts: bool = True,
    **vllm_kwargs: Any,
) -> HFRolloutEngine | VLLMRolloutEngine:
    """The rollout engine called `name`: ``"hf"`` → `HFRolloutEngine` (shares the model's modules; nothing
    to sync), ``"vllm"`` → `VLLMRolloutEngine` (its own weights; call `sync_weights` after each update).
    `share_prompts` is the built-in engine's (vLLM caches shared prompt prefixes itself); `vllm_kwargs` go to
    `VLLMRolloutEngine` only (``"hf"`` refuses them)."""
    if name == "hf":
        if vllm_kwargs:
            raise TypeError(f"options for the vllm engine given to the hf engine: {sorted(vllm_kwargs)}")
        return HFRolloutEngine(
            model, processor, suppress_token_ids=suppress_token_ids, share_prompts=share_prompts
        )
    if name == "vllm":
        ok, why = vllm_available()
        if not ok:
            raise VLLMUnavailable(
                f"rollout.engine=vllm needs vLLM: pip install 'mssr[vllm]' on GPUs, or scripts/vllm_cpu_env.sh "
                f"for a CPU test environment ({why})"
            )
        return VLLMRolloutEngine(model, processor, suppress_token_ids=suppress_token_ids, **vllm_kwargs)
    raise ValueError(f"unknown rollout engine {name!r}: expected 'hf' or 'vllm'")


def engine_from_config(
    rollout: Any, model: nn.Module, processor: Any, *, suppress_token_ids: Sequence[int] | None = None
) -> HFRolloutEngine | VLLMRolloutEngine:
    """The engine a ``RolloutConfig`` names (``rollout.engine``, its ``vllm_*`` options), with the checks that
    need the machine (vLLM's sleep mode exists on GPUs only)."""
    if rollout.engine != "vllm":
        return build_engine(
            rollout.engine,
            model,
            processor,
            suppress_token_ids=suppress_token_ids,
            share_prompts=rollout.share_prompts,
        )
    if rollout.vllm.sleep_level and not torch.cuda.is_available():
        raise ConfigError(
            "rollout.vllm.sleep_level needs a GPU: vLLM's sleep mode exists on CUDA/ROCm/XPU only (set it to 0)"
        )
    return build_engine(
        "vllm",
        model,
        processor,
        suppress_token_ids=suppress_token_ids,
        share_prompts=rollout.share_prompts,
        max_model_len=rollout.vllm.max_model_len,
        gpu_memory_utilization=rollout.vllm.gpu_memory_utilization,
        sleep_level=rollout.vllm.sleep_level,
    )
