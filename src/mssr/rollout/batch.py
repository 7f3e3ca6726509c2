"""Batch types of the rollout stage: what goes into an engine and what comes out.

`PromptInput` is one templated prompt with its images. `RolloutBatch` holds N responses (n per prompt),
laid out for a teacher-forced forward: row r is ``[left-padded prompt | right-padded response]``.
Vision inputs are stored once per distinct prompt (`PromptStore`), not once per response, so a group
of n responses to one image costs one copy of its pixels; `RolloutBatch.vision_inputs` expands them
to the per-row order the model expects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image


@dataclass(frozen=True)
class PromptInput:
    """One prompt for an engine.

    Attributes:
        key: stable id of the prompt (the tracker's key; docs/method.md §1).
        text: the fully templated prompt string (chat template applied, generation prompt appended), with
            one image placeholder span per image (Qwen2-VL: ``<|vision_start|><|image_pad|><|vision_end|>``).
        images: the images, in the order their placeholders appear in `text`.
        text_without_images: the same prompt templated with no images, used by `RolloutBatch.text_only`
            (cross-modal KL ablation, docs/method.md §6). ``None`` derives it by deleting every
            ``<|vision_start|>…<|vision_end|>`` span from `text`.
    """

    key: str
    text: str
    images: list[Image.Image] = field(default_factory=list)
    text_without_images: str | None = None


@dataclass
class PromptStore:
    """Per-prompt data shared by all responses to that prompt (S distinct prompts, "slots").

    Attributes:
        pixel_values: ``[total_patches, D]``, the processor's patches of every image of every slot,
            slot by slot, image by image; ``None`` when no slot has an image.
        image_grid_thw: ``[total_images, 3]`` (t, h, w) patch grid per image, same order; ``None`` likewise.
        n_images: ``LongTensor[S]``, images per slot.
        text_only_ids: per slot, the prompt token ids re-templated without images (unpadded).
        pixel_layout: how `pixel_values` reach the model. ``"patches"`` (the Qwen-VL families): rows are
            patches, ``image_grid_thw`` says how many per image. ``"images"`` (Gemma 3): one row ``[C, H, W]``
            per image. ``"nested"`` (Idefics3 / SmolVLM): one row per image or image tile, fed as
            ``[1, rows, C, H, W]``. The last two need `slot_units`.
        slot_units: ``LongTensor[S]``, rows of `pixel_values` per slot (``"images"`` / ``"nested"``).
    """

    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    n_images: torch.Tensor
    text_only_ids: list[torch.Tensor]
    pixel_layout: str = "patches"
    slot_units: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.n_images.numel())

    def _unit_ranges(self, slots: Sequence[int]) -> list[tuple[int, int]]:
        """Row ranges ``[start, end)`` of `pixel_values` of `slots` (non-patch layouts), in slot order."""
        if self.slot_units is None:
            return []
        start = torch.cat([self.slot_units.new_zeros(1), self.slot_units.cumsum(0)]).tolist()
        return [(start[s], start[s + 1]) for s in slots if start[s + 1] > start[s]]

    def _image_ranges(self, slots: Sequence[int]) -> tuple[list[int], list[tuple[int, int]]]:
        """Image indices and patch ranges ``[start, end)`` of `slots`, in slot order."""
        if self.image_grid_thw is None:
            return [], []
        img_start = torch.cat([self.n_images.new_zeros(1), self.n_images.cumsum(0)]).tolist()
        patches = self.image_grid_thw.prod(-1)
        patch_start = torch.cat([patches.new_zeros(1), patches.cumsum(0)]).tolist()
        images: list[int] = []
        ranges: list[tuple[int, int]] = []
        for s in slots:
            for i in range(img_start[s], img_start[s + 1]):
                images.append(i)
                ranges.append((patch_start[i], patch_start[i + 1]))
        return images, ranges

    def gather(self, slots: Sequence[int]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(pixel_values, image_grid_thw)`` for the images of `slots` in that order (repeats allowed);
        the grid is ``None`` outside the ``"patches"`` layout."""
        if self.pixel_layout != "patches":
            units = self._unit_ranges(slots)
            if self.pixel_values is None or not units:
                return None, None
            rows = torch.cat([torch.arange(a, b, device=self.pixel_values.device) for a, b in units])
            return self.pixel_values.index_select(0, rows), None
        images, ranges = self._image_ranges(slots)
        if not images:
            return None, None
        assert self.pixel_values is not None and self.image_grid_thw is not None
        device = self.pixel_values.device
        index = torch.cat([torch.arange(a, b, device=device) for a, b in ranges])
        pixel_values = self.pixel_values.index_select(0, index)
        grid = self.image_grid_thw.index_select(0, torch.tensor(images, device=self.image_grid_thw.device))
        return pixel_values, grid

    def subset(self, slots: Sequence[int]) -> PromptStore:
        """A store holding only `slots`, renumbered 0..len(slots)-1 in the given order."""
        pixel_values, grid = self.gather(slots)
        idx = torch.as_tensor(list(slots), dtype=torch.long, device=self.n_images.device)
        return PromptStore(
            pixel_values=pixel_values,
            image_grid_thw=grid,
            n_images=self.n_images.index_select(0, idx),
            text_only_ids=[self.text_only_ids[s] for s in slots],
            pixel_layout=self.pixel_layout,
            slot_units=None
            if self.slot_units is None
            else self.slot_units.index_select(0, idx.to(self.slot_units.device)),
        )

    def to(self, device: torch.device | str) -> PromptStore:
        return PromptStore(
            pixel_values=None if self.pixel_values is None else self.pixel_values.to(device),
            image_grid_thw=None if self.image_grid_thw is None else self.image_grid_thw.to(device),
            n_images=self.n_images.to(device),
            text_only_ids=self.text_only_ids,
            pixel_layout=self.pixel_layout,
            slot_units=None if self.slot_units is None else self.slot_units.to(device),
        )

    def model_inputs(self, slots: Sequence[int]) -> dict[str, torch.Tensor]:
        """The model's image keyword arguments for the images of `slots` in that order; empty without any."""
        pixel_values, grid = self.gather(slots)
        if pixel_values is None:
            return {}
        if self.pixel_layout == "patches":
            return {"pixel_values": pixel_values, "image_grid_thw": grid}
        if self.pixel_layout == "nested":
            return {"pixel_values": pixel_values[None]}
        return {"pixel_values": pixel_values}


# Row-aligned fields: tensors/lists whose first dimension is N (one entry per response).
_ROW_TENSORS = (
    "prompt_index",
    "input_ids",
    "attention_mask",
    "response_ids",
    "response_mask",
    "truncated",
    "mm_token_type_ids",
    "rollout_logprobs",
)
_ROW_LISTS = ("keys", "response_text")


@dataclass
class RolloutBatch:
    """N responses, laid out for a teacher-forced forward (P prompt columns, T response columns).

    Layout of row r: ``input_ids[r] = [pad … pad, prompt tokens | response tokens, pad … pad]`` — the
    prompt left-padded to P, the response right-padded to T (pad = `pad_token_id`). Column ``P + t``
    holds response token t, predicted by the logits at column ``P + t - 1``.

    Attributes:
        prompt_index: ``LongTensor[N]``, index of the row's prompt in the list given to the engine
            (responses to one prompt are consecutive rows).
        keys: ``list[str]`` of length N, the prompt keys.
        input_ids: ``LongTensor[N, P+T]``.
        attention_mask: ``LongTensor[N, P+T]``: 1 on prompt tokens and on response tokens up to and
            including EOS.
        response_ids: ``LongTensor[N, T]`` (pad after EOS).
        response_mask: ``FloatTensor[N, T]``: 1.0 up to and including the EOS token, 0.0 after.
        response_text: decoded responses (masked tokens only, special tokens stripped).
        truncated: ``BoolTensor[N]``: the response hit `max_new_tokens` without an EOS token.
        prompts: vision inputs and text-only prompt ids, once per distinct prompt (see `PromptStore`).
        prompt_slot: ``LongTensor[N]``: row -> slot of `prompts`.
        mm_token_type_ids: ``LongTensor[N, P+T]`` (0 text, 1 image, 2 video; zeros over the response)
            when the processor produces it — Qwen2-VL's forward needs it with images (docs/platform.md pitfall 3).
            Passed to the model under `token_types_key`.
        temperature: the sampling temperature (1.0 for greedy); `compute_logprobs`' default.
        suppress_token_ids: token ids whose logits were set to -inf while sampling (docs/platform.md pitfall 2);
            `compute_logprobs` masks them too by default, so log-probs describe the sampled distribution.
        pad_token_id: the padding id used in `input_ids` / `response_ids`.
        rollout_logprobs: ``FloatTensor[N, T]``: log-probs reported by the sampler itself (its processed
            scores, top-k/top-p included) when the engine was asked for them: π_old of the PPO ratio under
            ``rollout.old_logprobs`` = ``sampler`` (or ``auto`` where they equal the training forward's),
            otherwise the measure of the sampler/trainer mismatch (``rollout/logprob_diff_*``).
    """

    prompt_index: torch.Tensor
    keys: list[str]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor
    response_text: list[str]
    truncated: torch.Tensor
    prompts: PromptStore
    prompt_slot: torch.Tensor
    mm_token_type_ids: torch.Tensor | None = None
    temperature: float = 1.0
    suppress_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0
    rollout_logprobs: torch.Tensor | None = None
    # the forward's name for mm_token_type_ids: "mm_token_type_ids" (Qwen-VL) or "token_type_ids" (Gemma 3,
    # whose image tokens attend to each other bidirectionally)
    token_types_key: str = "mm_token_type_ids"

    def __post_init__(self) -> None:
        n = self.input_ids.shape[0]
        for name in _ROW_TENSORS:
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"RolloutBatch.{name} has {value.shape[0]} rows, input_ids has {n}")
        for name in _ROW_LISTS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"RolloutBatch.{name} has {len(getattr(self, name))} entries, expected {n}")
        if self.prompt_slot.shape[0] != n:
            raise ValueError(f"RolloutBatch.prompt_slot has {self.prompt_slot.shape[0]} rows, expected {n}")
        if self.input_ids.shape[1] < self.response_ids.shape[1]:
            raise ValueError("input_ids must hold the prompt columns followed by the response columns")

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def prompt_length(self) -> int:
        """P, the number of (left-padded) prompt columns."""
        return int(self.input_ids.shape[1] - self.response_ids.shape[1])

    @property
    def response_length(self) -> int:
        """T, the number of (right-padded) response columns."""
        return int(self.response_ids.shape[1])

    def replace(self, **changes: object) -> RolloutBatch:
        """A copy with some fields replaced (e.g. ``rollout_logprobs=...``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_responses(self, ids: torch.Tensor, mask: torch.Tensor) -> RolloutBatch:
        """The same prompts (and images) with other response tokens ``ids [N, T']`` (``mask`` 1 = real): a
        teacher-forcing batch for re-scoring stored responses (SPO's D(x)); nothing sampled is carried over."""
        p = self.prompt_length
        n, t = ids.shape
        mm = self.mm_token_type_ids
        if mm is not None:
            mm = torch.cat([mm[:, :p], torch.zeros((n, t), dtype=mm.dtype, device=mm.device)], dim=1)
        return self.replace(
            input_ids=torch.cat([self.input_ids[:, :p], ids.to(self.input_ids.device)], dim=1),
            attention_mask=torch.cat([self.attention_mask[:, :p], mask.to(self.attention_mask.dtype)], dim=1),
            response_ids=ids,
            response_mask=mask.float(),
            truncated=torch.zeros(n, dtype=torch.bool),
            response_text=[""] * n,
            mm_token_type_ids=mm,
            rollout_logprobs=None,
        )

    def select(self, indices: Sequence[int] | torch.Tensor) -> RolloutBatch:
        """Rows `indices` (any order, repeats allowed), with the vision inputs of exactly those rows."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise IndexError(f"select: index out of range for a batch of {len(self)} rows")
        idx = idx % max(len(self), 1)
        rows = idx.tolist()
        old_slots = self.prompt_slot[idx.to(self.prompt_slot.device)].tolist()
        kept: dict[int, int] = {}
        for s in old_slots:
            kept.setdefault(s, len(kept))
        changes: dict[str, object] = {}
        for name in _ROW_TENSORS:
            value = getattr(self, name)
            if value is not None:
                changes[name] = value.index_select(0, idx.to(value.device))
        for name in _ROW_LISTS:
            values = getattr(self, name)
            changes[name] = [values[r] for r in rows]
        changes["prompts"] = self.prompts.subset(list(kept))
        changes["prompt_slot"] = torch.tensor(
            [kept[s] for s in old_slots], dtype=torch.long, device=self.prompt_slot.device
        )
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to(self, device: torch.device | str) -> RolloutBatch:
        """All tensors moved to `device` (lists and scalars unchanged)."""
        changes: dict[str, object] = {}
        for name in (*_ROW_TENSORS, "prompt_slot"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value.to(device)
        changes["prompts"] = self.prompts.to(device)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def vision_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments carrying the rows' images for the model's forward, in row order.

        Empty when no row has an image. Qwen2-VL's forward also needs `mm_token_type_ids` with images (under
        `token_types_key`).
        """
        out = self.prompts.model_inputs(self.prompt_slot.tolist())
        if not out:
            return {}
        if self.mm_token_type_ids is not None:
            out[self.token_types_key] = self.mm_token_type_ids
        return out

    def text_only(self) -> RolloutBatch:
        """The same responses after prompts re-templated without images (docs/method.md §6 cross-modal KL).

        Prompt columns are rebuilt (left-padded) from `PromptStore.text_only_ids`; the response columns,
        masks, texts and stored log-probs are unchanged, so row r still scores response r.
        """
        prompt_ids = [self.prompts.text_only_ids[s] for s in self.prompt_slot.tolist()]
        p = max(int(x.numel()) for x in prompt_ids) if prompt_ids else 0
        n, t = self.response_ids.shape
        device = self.input_ids.device
        prompt = torch.full((n, p), self.pad_token_id, dtype=torch.long, device=device)
        prompt_mask = torch.zeros((n, p), dtype=self.attention_mask.dtype, device=device)
        for r, ids in enumerate(prompt_ids):
            if ids.numel():
                prompt[r, p - ids.numel() :] = ids.to(device)
                prompt_mask[r, p - ids.numel() :] = 1
        response_attention = self.attention_mask[:, self.prompt_length :]
        store = PromptStore(
            pixel_values=None,
            image_grid_thw=None,
            n_images=torch.zeros_like(self.prompts.n_images),
            text_only_ids=self.prompts.text_only_ids,
            pixel_layout=self.prompts.pixel_layout,
            slot_units=None if self.prompts.slot_units is None else torch.zeros_like(self.prompts.slot_units),
        )
        return dataclasses.replace(
            self,
            input_ids=torch.cat([prompt, self.response_ids], dim=1),
            attention_mask=torch.cat([prompt_mask, response_attention], dim=1),
            mm_token_type_ids=None
            if self.mm_token_type_ids is None
            else torch.zeros((n, p + t), dtype=self.mm_token_type_ids.dtype, device=device),
            prompts=store,
        )
