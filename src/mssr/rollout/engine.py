"""Rollout engines: (policy, prompts) -> `RolloutBatch`.

`RolloutEngine` is the interface the trainer and the evaluator see (``generate`` checks a call's arguments
into a :class:`Sampling` and hands them to the engine's ``_sample``); `HFRolloutEngine` implements it with its
own sampling loop or transformers' `generate` (batched, left padding, KV cache), and
:class:`mssr.rollout.vllm_engine.VLLMRolloutEngine` with vLLM, encoding and assembling through the same
public helpers (:meth:`HFRolloutEngine.encode`, :meth:`HFRolloutEngine.assemble`).
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from transformers import GenerationConfig

from mssr.models.vision_tokens import default_suppress_token_ids
from mssr.rollout.batch import PromptInput, PromptStore, RolloutBatch
from mssr.rollout.prefix import continue_forward, prefill

Prompts = Sequence[PromptInput]  # one generate call's prompts

_VISION_SPAN = re.compile(r"<\|vision_start\|>.*?<\|vision_end\|>", re.DOTALL)
_END_TOKENS = ("<|im_end|>", "<|endoftext|>")
# Other families' end-of-turn tokens (Gemma 3, Idefics3 / SmolVLM), when they are added tokens
_OTHER_END_TOKENS = ("<end_of_turn>", "<end_of_utterance>")
# A prompt whose generation prompt opens a think block (Qwen3 "Thinking" templates): the response starts
# inside it, so its text is scored with this opening put back in front.
_OPEN_THINK = re.compile(r"<think>\s*\Z")


@runtime_checkable
class RolloutEngine(Protocol):
    """Generates responses to prompts; the trainer never knows which engine ran.

    Contract for implementations:
    - Rows are ordered prompt by prompt, the n samples of prompt i in rows ``i*n … i*n+n-1``, with
      ``prompt_index`` and ``keys`` set accordingly.
    - Sampling uses exactly ``softmax(logits / temperature)`` restricted by `top_k` (0 = off) and `top_p`
      (1.0 = off) with `suppress_token_ids` masked out — no implicit top-k, repetition penalty or other
      processor (docs/platform.md pitfall 1) — and records `temperature` and `suppress_token_ids` in the batch so
      `compute_logprobs` scores the same distribution.
    - A response stops at the first EOS token (included in the mask) or at `max_new_tokens` (marked
      `truncated`).
    - `seed` makes a call reproducible without disturbing the caller's global RNG; ``None`` draws from it.
    - The update protocol: ``shares_weights`` says whether the engine runs the policy's own modules (then it
      always samples the current weights, and under FSDP the trainer gathers them for it) or a copy of its
      own; ``sleeps`` whether it frees its memory during the update. The trainer calls ``before_update()``
      after generating (when ``sleeps``) and ``after_update(model)`` after each update (when it does not
      share the weights: wake up, load the new weights; returns the seconds it took); ``sync(model)`` loads
      weights at any time (a resume); ``close()`` releases the engine's own resources.
    """

    shares_weights: bool
    sleeps: bool

    def sync(self, model: Any) -> float: ...

    def before_update(self) -> None: ...

    def after_update(self, model: Any) -> float: ...

    def close(self) -> None: ...

    def generate(
        self,
        prompts: Sequence[PromptInput],
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 64,
        greedy: bool = False,
        batch_size: int | None = None,
        seed: int | None = None,
        return_logprobs: bool | None = None,
    ) -> RolloutBatch:
        """Sample ``n`` responses per prompt. ``batch_size``: rows per engine call (memory), ``None`` = the
        engine's choice; ``return_logprobs``: fill ``rollout_logprobs`` with the sampled tokens' log-probs
        (``None``: the engine's default). An engine that subclasses this protocol gets the arguments checked
        here and implements ``_sample(prompts, sampling)``."""
        sampling = Sampling(
            n=n,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            greedy=greedy,
            batch_size=batch_size,
            seed=seed,
            logprobs=return_logprobs,
        )
        check_generate_args(prompts, sampling)
        return self._sample(prompts, sampling)


@dataclass(frozen=True)
class Sampling:
    """One ``generate`` call's settings: ``n`` responses per prompt from ``softmax(logits / temperature)``
    restricted by ``top_k`` (0 = off) and ``top_p`` (1 = off), or the argmax (``greedy``), each up to
    ``max_new_tokens`` tokens; ``batch_size`` rows per engine call, the call's ``seed``, and whether to return
    the sampled tokens' log-probs (``logprobs``; None: the engine's default)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    greedy: bool = False
    batch_size: int | None = None
    seed: int | None = None
    logprobs: bool | None = None

    def distribution(self) -> dict[str, Any]:
        """The settings that shape each row's distribution (all but ``n``), as keyword arguments."""
        return {
            "greedy": self.greedy,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_new_tokens": self.max_new_tokens,
        }


def check_generate_args(prompts: Sequence[PromptInput], s: Sampling) -> None:
    """Raise ``ValueError`` for arguments of `RolloutEngine.generate` that no engine accepts."""
    if s.n < 1:
        raise ValueError(f"n must be >= 1, got {s.n}")
    if s.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {s.max_new_tokens}")
    if not s.greedy and s.temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling (use greedy=True), got {s.temperature}")
    if not 0 < s.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {s.top_p}")
    if s.top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {s.top_k}")
    if s.batch_size is not None and s.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {s.batch_size}")
    if not prompts:
        raise ValueError("no prompts given")


def _eos_token_ids(model: nn.Module, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    candidates = [*(gen_eos if isinstance(gen_eos, list) else [gen_eos]), tokenizer.eos_token_id]
    vocab = tokenizer.get_vocab()
    candidates += [vocab.get(t) for t in _END_TOKENS[:1]]
    added = tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}
    candidates += [added.get(t) for t in _OTHER_END_TOKENS]
    for c in candidates:
        if isinstance(c, int) and c >= 0 and c not in ids:
            ids.append(c)
    if not ids:
        raise ValueError("no EOS token: neither the tokenizer nor the model's generation_config defines one")
    return ids


@contextlib.contextmanager
def _plain_generation_defaults(model: nn.Module) -> Iterator[None]:
    """Hide the model's own generation_config while `generate` runs.

    transformers fills every unset field of the GenerationConfig passed to `generate` from
    `model.generation_config` (a hub checkpoint's may carry repetition_penalty=1.05, top_k=1, …), which
    would silently change the sampled distribution. With a blank one, only library defaults fill gaps,
    and every field that shapes the distribution is set explicitly by the engine.
    """
    models = [model]
    if hasattr(model, "get_base_model"):  # a peft PeftModel: generate reads the wrapped model's config
        models.append(model.get_base_model())
    saved = [getattr(m, "generation_config", None) for m in models]
    for m in models:
        m.generation_config = GenerationConfig()
    try:
        yield
    finally:
        for m, s in zip(models, saved):
            m.generation_config = s


def process_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    suppress_token_ids: Sequence[int] | torch.Tensor = (),
) -> torch.Tensor:
    """The logits a sampler draws from, float32: ``logits / temperature``, suppressed ids at -inf, then
    top-k (keep the k largest; 0 = off), then top-p (keep the smallest set of most probable tokens whose
    mass reaches `top_p`, at least one; 1.0 = off) — transformers' processor order and tie rules."""
    z = logits.float() / temperature
    if len(suppress_token_ids):
        ids = (
            suppress_token_ids.to(z.device)
            if isinstance(suppress_token_ids, torch.Tensor)
            else torch.as_tensor(list(suppress_token_ids), device=z.device)
        )
        z = z.index_fill(-1, ids, float("-inf"))
    if 0 < top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p < 1.0:
        ascending, order = torch.sort(z, dim=-1)
        drop = ascending.softmax(-1).cumsum(-1) <= 1 - top_p
        drop[..., -1:] = False
        z = z.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return z


class HFRolloutEngine(RolloutEngine):
    """`RolloutEngine` for HF vision-language models (Qwen2-VL family): batched, left padding, KV cache.

    By default it decodes with its own sampling loop over the model's forward, running each distinct
    prompt once and copying its KV cache to the prompt's n rows (`mssr.rollout.prefix`), so a group of n
    responses costs one prefill of its prompt and image. ``share_prompts=False`` calls transformers'
    `generate` on every row instead (the reference the tests compare the loop with).

    Args:
        model: the policy (unwrapped: its forward / `generate` is called directly). Its modules are
            shared, so generation always uses the current weights.
        processor: the HF processor (tokenizer + image processor) of the policy.
        suppress_token_ids: token ids never sampled; ``None`` = `default_suppress_token_ids` (the vision
            special tokens), ``()`` = none.
        share_prompts: prefill each distinct prompt once per call (default) or every row (`generate`).
    """

    shares_weights = True  # the policy's own modules: nothing to sync
    sleeps = False

    def __init__(
        self,
        model: nn.Module,
        processor: Any,
        *,
        suppress_token_ids: Sequence[int] | None = None,
        share_prompts: bool = True,
    ):
        self.model = model
        self.share_prompts = share_prompts
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.suppress_token_ids = (
            default_suppress_token_ids(model, processor)
            if suppress_token_ids is None
            else tuple(int(t) for t in suppress_token_ids)
        )
        self.eos_token_ids = _eos_token_ids(model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else self.eos_token_ids[0])
        self.image_token = getattr(processor, "image_token", "<|image_pad|>")
        # Qwen-VL processors return patches and a grid per image; the others whole images per prompt
        image_processor = getattr(processor, "image_processor", None)
        names = getattr(image_processor, "model_input_names", ["image_grid_thw"])
        self.patch_layout = "image_grid_thw" in names
        # PromptStore.pixel_layout of this engine's batches (the same whether or not a call holds images)
        self.pixel_layout = (
            "patches" if self.patch_layout else "nested" if "pixel_attention_mask" in names else "images"
        )
        self.token_types_key = "mm_token_type_ids"
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        with contextlib.suppress(TypeError, ValueError):
            params = inspect.signature(inner.forward).parameters
            if "mm_token_type_ids" not in params and "token_type_ids" in params:
                self.token_types_key = "token_type_ids"  # Gemma 3: image tokens attend bidirectionally

    # ----------------------------------------------------------------------------------------------- encode
    def check_prompts(self, prompts: Sequence[PromptInput]) -> None:
        """Every prompt is a `PromptInput` with as many images as image placeholders (shared with the vLLM
        engine, with :meth:`encode` and :meth:`assemble`, so that both engines build the same batches)."""
        for i, p in enumerate(prompts):
            if not isinstance(p, PromptInput):
                raise TypeError(f"prompt {i}: expected PromptInput, got {type(p).__name__}")
            n_placeholders = p.text.count(self.image_token)
            if n_placeholders != len(p.images):
                raise ValueError(
                    f"prompt {i} (key {p.key!r}): its text has {n_placeholders} image placeholder(s) "
                    f"{self.image_token!r} but {len(p.images)} image(s) were given"
                )
            if p.text_without_images is not None and self.image_token in p.text_without_images:
                raise ValueError(
                    f"prompt {i} (key {p.key!r}): text_without_images still holds an image placeholder"
                )

    def encode(
        self, prompts: Sequence[PromptInput], chunk: int = 128
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, PromptStore]:
        """Per prompt: unpadded ids and mm_token_type_ids, plus the store of images and text-only ids.

        The processor runs on `chunk` prompts at a time (padded, then unpadded with the attention mask).
        """
        ids: list[torch.Tensor] = []
        mm_types: list[torch.Tensor] | None = []
        pixel_chunks: list[torch.Tensor] = []
        grid_chunks: list[torch.Tensor] = []
        text_only: list[torch.Tensor] = []
        units: list[int] = []  # non-patch layouts: pixel rows per prompt
        layout = self.pixel_layout
        types_key = self.token_types_key
        extra: dict[str, Any] = {} if self.patch_layout else {"add_special_tokens": False}
        if self.tokenizer.pad_token_id is None:
            chunk = 1  # the processor cannot pad: one prompt per call
        for start in range(0, len(prompts), chunk):
            part = prompts[start : start + chunk]
            images = [img for p in part for img in p.images]
            kwargs: dict[str, Any] = {"text": [p.text for p in part], "padding": True, "return_tensors": "pt"}
            # the chat template already wrote the special tokens (Gemma 3's <bos>): the tokenizer adds none
            kwargs.update(extra)
            if images:
                # other families take the images nested per prompt
                kwargs["images"] = images if self.patch_layout else [list(p.images) for p in part]
            enc = self.processor(**kwargs)
            keep = enc["attention_mask"].bool()
            ids.extend(row[m] for row, m in zip(enc["input_ids"], keep))
            if mm_types is not None and types_key in enc:
                mm_types.extend(row[m] for row, m in zip(enc[types_key], keep))
            else:
                mm_types = None
            if images and self.patch_layout:
                pixel_chunks.append(enc["pixel_values"])
                grid_chunks.append(enc["image_grid_thw"])
            elif images:
                layout = self._add_units(enc["pixel_values"], part, pixel_chunks, units)
            elif not self.patch_layout:
                units.extend(0 for _ in part)
            plain = [
                p.text_without_images if p.text_without_images is not None else self._strip_images(p.text)
                for p in part
            ]
            enc_plain = self.processor(text=plain, padding=True, return_tensors="pt", **extra)
            keep_plain = enc_plain["attention_mask"].bool()
            text_only.extend(row[m] for row, m in zip(enc_plain["input_ids"], keep_plain))
        store = PromptStore(
            pixel_values=torch.cat(pixel_chunks) if pixel_chunks else None,
            image_grid_thw=torch.cat(grid_chunks) if grid_chunks else None,
            n_images=torch.tensor([len(p.images) for p in prompts], dtype=torch.long),
            text_only_ids=text_only,
            pixel_layout=layout,
            slot_units=None if self.patch_layout else torch.tensor(units, dtype=torch.long),
        )
        return ids, mm_types, store

    def _strip_images(self, text: str) -> str:
        """`text` without its image placeholders: Qwen's ``<|vision_start|>…<|vision_end|>`` spans, or another
        family's placeholder token (Gemma 3 ``<start_of_image>``, Idefics3 ``<image>``)."""
        text = _VISION_SPAN.sub("", text)
        return text if self.patch_layout else text.replace(self.image_token, "")

    @staticmethod
    def _add_units(
        pixel_values: torch.Tensor, part: Sequence[PromptInput], chunks: list[torch.Tensor], units: list[int]
    ) -> str:
        """Append one chunk's images (non-Qwen layouts) to `chunks` and their row count per prompt to `units`;
        return the layout. ``[B, N, C, H, W]`` (Idefics3 / SmolVLM: N images or tiles per prompt, all-zero
        padding rows dropped as the model drops them) is ``"nested"``; ``[images, C, H, W]`` (Gemma 3) is
        ``"images"``."""
        if pixel_values.dim() == 5:
            for row in pixel_values:
                real = row[(row != 0).flatten(1).any(-1)]
                chunks.append(real)
                units.append(int(real.shape[0]))
            return "nested"
        n = [len(p.images) for p in part]
        if pixel_values.shape[0] != sum(n):
            raise NotImplementedError(
                f"the processor returned {pixel_values.shape[0]} image rows for {sum(n)} images (crops such as "
                "Gemma 3's pan-and-scan are not supported)"
            )
        chunks.append(pixel_values)
        units.extend(n)
        return "images"

    # --------------------------------------------------------------------------------------------- generate
    def _generation_config(
        self, *, greedy: bool, temperature: float, top_p: float, top_k: int, max_new_tokens: int
    ) -> GenerationConfig:
        sampling: dict[str, Any] = (
            {}  # greedy: transformers ignores (and warns about) sampling parameters
            if greedy
            # top_k=0 disables top-k; left unset, transformers applies top_k=50 (docs/platform.md pitfall 1)
            else {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        )
        return GenerationConfig(
            do_sample=not greedy,
            **sampling,
            min_p=None,
            typical_p=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            eos_token_id=list(self.eos_token_ids),
            pad_token_id=self.pad_token_id,
            suppress_tokens=list(self.suppress_token_ids) or None,
            use_cache=True,
            return_dict_in_generate=True,
        )

    def sync(self, model: Any) -> float:
        """Nothing to load: the engine runs the policy's own modules."""
        return 0.0

    def before_update(self) -> None:
        """Nothing to free."""

    def after_update(self, model: Any) -> float:
        return 0.0

    def close(self) -> None:
        """Nothing of its own to release."""

    def _sample(self, prompts: Prompts, sampling: Sampling) -> RolloutBatch:
        """`RolloutEngine.generate` (arguments checked). ``batch_size``: rows per `generate` call (memory);
        ``None`` = all rows at once. With a `seed`, the random stream depends on it, so keep it fixed for
        reproducibility. ``return_logprobs`` (default off): also fill `rollout_logprobs` from the sampler's
        processed scores (the exact distribution sampled from, top-k/top-p included)."""
        batch_size, seed, return_logprobs = sampling.batch_size, sampling.seed, bool(sampling.logprobs)
        n = sampling.n
        self.check_prompts(prompts)

        prompt_ids, mm_types, store = self.encode(prompts)
        slots = [i for i in range(len(prompts)) for _ in range(n)]
        device = next(self.model.parameters()).device
        rng_devices = [device] if device.type == "cuda" else []
        rng = torch.random.fork_rng(devices=rng_devices) if seed is not None else contextlib.nullcontext()
        kwargs = sampling.distribution()
        with rng, _plain_generation_defaults(self.model), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            encoded = (prompt_ids, mm_types, store, device)
            if self.share_prompts:
                responses, sampler_lps = self._sample_shared(len(prompts), n, batch_size, encoded, kwargs)
            else:
                responses, sampler_lps = self._sample_rows(
                    slots, batch_size, encoded, kwargs, return_logprobs
                )
        if not return_logprobs:
            sampler_lps = []
        return self.assemble(
            prompts,
            n,
            slots,
            prompt_ids,
            mm_types,
            store,
            responses,
            sampler_lps,
            1.0 if sampling.greedy else sampling.temperature,
        )

    def _sample_shared(
        self, n_prompts: int, n: int, batch_size: int | None, encoded: tuple, sampling: dict[str, Any]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Chunks of whole prompts: every prompt is prefilled once and decoded for its ``n`` rows."""
        prompt_ids, mm_types, store, device = encoded
        responses, sampler_lps = [], []
        per = max(1, (batch_size or n_prompts * n) // n)
        for start in range(0, n_prompts, per):
            heads = list(range(start, min(start + per, n_prompts)))
            inputs = self._left_pad(heads, prompt_ids, mm_types, store, device)
            new, lp = self._decode(inputs, n, **sampling)
            responses.append(new.cpu())
            sampler_lps.append(lp.cpu())
        return responses, sampler_lps

    def _sample_rows(
        self,
        slots: list[int],
        batch_size: int | None,
        encoded: tuple,
        sampling: dict[str, Any],
        return_logprobs: bool,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every row's full sequence through transformers' ``generate``, ``batch_size`` rows at a time."""
        prompt_ids, mm_types, store, device = encoded
        responses, sampler_lps = [], []
        config = self._generation_config(**sampling)
        config.output_scores = return_logprobs
        step = batch_size or len(slots)
        for start in range(0, len(slots), step):
            rows = slots[start : start + step]
            inputs = self._left_pad(rows, prompt_ids, mm_types, store, device)
            out = self.model.generate(**inputs, generation_config=config)
            new = out.sequences[:, inputs["input_ids"].shape[1] :].cpu()
            responses.append(new)
            if return_logprobs:
                scores = torch.stack(out.scores, dim=1).float()  # [b, t, V], already processed
                lp = torch.log_softmax(scores, dim=-1).gather(-1, new.to(scores.device)[..., None])
                sampler_lps.append(lp.squeeze(-1).cpu())
        return responses, sampler_lps

    def _decode(
        self,
        inputs: dict[str, torch.Tensor],
        n: int,
        *,
        greedy: bool,
        temperature: float,
        top_p: float,
        top_k: int,
        max_new_tokens: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample `n` continuations of each prompt row of `inputs` (rows prompt by prompt, n each).

        Returns ``(tokens, logprobs)``, ``[rows, t]`` with t ≤ `max_new_tokens`: a row that has produced an
        EOS token continues with padding (log-prob 0), as transformers' `generate` does; `logprobs` are
        those of the processed distribution each token was drawn from (greedy: temperature 1).
        """
        vision = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        heads = inputs["input_ids"].shape[0]
        device = inputs["input_ids"].device
        row_to_head = torch.arange(heads, device=device).repeat_interleave(n)
        state = prefill(self.model, inputs["input_ids"], inputs["attention_mask"], vision, row_to_head)
        rows = row_to_head.numel()
        eos = torch.tensor(self.eos_token_ids, device=device)
        unfinished = torch.ones(rows, dtype=torch.bool, device=device)
        tokens: list[torch.Tensor] = []
        logprobs: list[torch.Tensor] = []
        logits = state.last_logits
        # built once per call: a large suppress list (e.g. a vocabulary's unused rows) costs ~20x per token
        # when rebuilt at every step
        suppress = torch.as_tensor(list(self.suppress_token_ids), dtype=torch.long, device=device)
        for t in range(max_new_tokens):
            z = process_logits(
                logits,
                temperature=1.0 if greedy else temperature,
                top_k=0 if greedy else top_k,
                top_p=1.0 if greedy else top_p,
                suppress_token_ids=suppress,
            )
            logp = torch.log_softmax(z, dim=-1)
            nxt = z.argmax(-1) if greedy else torch.multinomial(logp.exp(), 1).squeeze(-1)
            lp = logp.gather(-1, nxt[:, None]).squeeze(-1)
            nxt = torch.where(unfinished, nxt, torch.full_like(nxt, self.pad_token_id))
            tokens.append(nxt)
            logprobs.append(torch.where(unfinished, lp, torch.zeros_like(lp)))
            unfinished = unfinished & ~torch.isin(nxt, eos)
            if t + 1 == max_new_tokens or not bool(unfinished.any()):
                break
            # every token fed so far is attended (a finished row's padding too, as `generate` does)
            fed_mask = torch.ones((rows, t + 1), dtype=torch.long, device=device)
            logits = continue_forward(self.model, state, nxt[:, None], fed_mask, start=t)[:, -1]
        return torch.stack(tokens, dim=1), torch.stack(logprobs, dim=1)

    def _left_pad(
        self,
        rows: list[int],
        prompt_ids: list[torch.Tensor],
        mm_types: list[torch.Tensor] | None,
        store: PromptStore,
        device: torch.device,
    ) -> dict[str, torch.Tensor]:
        p = max(prompt_ids[s].numel() for s in rows)
        ids = torch.full((len(rows), p), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), p), dtype=torch.long)
        types = torch.zeros((len(rows), p), dtype=torch.long) if mm_types is not None else None
        for r, s in enumerate(rows):
            k = prompt_ids[s].numel()
            ids[r, p - k :] = prompt_ids[s]
            mask[r, p - k :] = 1
            if types is not None and mm_types is not None:
                types[r, p - k :] = mm_types[s]
        inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
        for key, value in store.model_inputs(rows).items():
            inputs[key] = value.to(device)
        if types is not None:
            inputs[self.token_types_key] = types.to(device)
        return inputs

    def assemble(
        self,
        prompts: Sequence[PromptInput],
        n: int,
        slots: list[int],
        prompt_ids: list[torch.Tensor],
        mm_types: list[torch.Tensor] | None,
        store: PromptStore,
        responses: list[torch.Tensor],
        sampler_lps: list[torch.Tensor],
        temperature: float,
    ) -> RolloutBatch:
        """The `RolloutBatch` of sampled ``responses`` (chunks of ``[rows, t]`` ids, rows prompt by prompt over
        ``slots``) and their sampler log-probs (empty: none) for the :meth:`encode`-d prompts."""
        rows = len(slots)
        t = max(r.shape[1] for r in responses)
        response_ids = torch.full((rows, t), self.pad_token_id, dtype=torch.long)
        rollout_lp = torch.zeros((rows, t)) if sampler_lps else None
        r0 = 0
        for i, chunk in enumerate(responses):
            response_ids[r0 : r0 + chunk.shape[0], : chunk.shape[1]] = chunk
            if rollout_lp is not None:
                rollout_lp[r0 : r0 + chunk.shape[0], : chunk.shape[1]] = sampler_lps[i]
            r0 += chunk.shape[0]

        is_eos = torch.isin(response_ids, torch.tensor(self.eos_token_ids))
        has_eos = is_eos.any(dim=1)
        first_eos = torch.where(has_eos, is_eos.int().argmax(dim=1), torch.full((rows,), t))
        length = torch.where(has_eos, first_eos + 1, torch.full((rows,), t))
        positions = torch.arange(t)[None, :]
        keep = positions < length[:, None]
        response_ids = response_ids.masked_fill(~keep, self.pad_token_id)
        response_mask = keep.float()
        if rollout_lp is not None:
            rollout_lp = rollout_lp.masked_fill(~keep, 0.0)
        texts = [
            self.tokenizer.decode(response_ids[r, : int(length[r])].tolist(), skip_special_tokens=True)
            for r in range(rows)
        ]
        opened = [m.group(0) if (m := _OPEN_THINK.search(prompts[s].text)) else "" for s in slots]
        texts = [o + t for o, t in zip(opened, texts)]

        p = max(x.numel() for x in prompt_ids)
        prompt = torch.full((rows, p), self.pad_token_id, dtype=torch.long)
        prompt_mask = torch.zeros((rows, p), dtype=torch.long)
        types = torch.zeros((rows, p + t), dtype=torch.long) if mm_types is not None else None
        for r, s in enumerate(slots):
            k = prompt_ids[s].numel()
            prompt[r, p - k :] = prompt_ids[s]
            prompt_mask[r, p - k :] = 1
            if types is not None and mm_types is not None:
                types[r, p - k : p] = mm_types[s]
        return RolloutBatch(
            prompt_index=torch.tensor(slots, dtype=torch.long),
            keys=[prompts[s].key for s in slots],
            input_ids=torch.cat([prompt, response_ids], dim=1),
            attention_mask=torch.cat([prompt_mask, keep.long()], dim=1),
            response_ids=response_ids,
            response_mask=response_mask,
            response_text=texts,
            truncated=~has_eos,
            prompts=store,
            prompt_slot=torch.tensor(slots, dtype=torch.long),
            mm_token_type_ids=types,
            temperature=temperature,
            suppress_token_ids=self.suppress_token_ids,
            pad_token_id=self.pad_token_id,
            rollout_logprobs=rollout_lp,
            token_types_key=self.token_types_key,
        )
