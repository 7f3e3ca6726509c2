"""SFT data: the splits, tokenised examples (prompt + worked solution), right-padded batches and the
response-only loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mssr.models import Policy, build_prompt
from mssr.sft.config import SFTConfig


@dataclass
class Example:
    """One tokenised training example: prompt (with expanded image tokens) + response ids."""

    input_ids: list[int]
    n_prompt: int
    mm_token_type_ids: list[int]
    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor
    # other families (Gemma 3, Idefics3): the processor's image tensors for this example (``pixel_values``,
    # ``pixel_attention_mask``) and the model input name of the per-token types (None: the model takes none)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    types_key: str | None = "mm_token_type_ids"


def response_text(record: Any) -> str:
    """The supervised response: the record's worked solution (``extra["solution"]``)."""
    solution = record.extra.get("solution")
    if not solution:
        raise ValueError(f"record {record.id}: no worked solution in extra['solution']; SFT needs one")
    return str(solution)


def encode_example(policy: Policy, record: Any, instruction: str | None) -> Example:
    """Prompt through the processor (so image tokens are expanded exactly as at rollout time), then the
    response tokens and the family's end-of-turn token (`end_of_turn_token`: ``<|im_end|>`` for Qwen) appended
    as ids — the same layout the RL trainer scores."""
    return encode_examples(policy, [record], instruction)[0]


def encode_examples(
    policy: Policy, records: Sequence[Any], instruction: str | None, chunk: int = 64
) -> list[Example]:
    """:func:`encode_example` for many records, calling the processor on chunks (much faster)."""
    proc, tok = policy.processor, policy.tokenizer
    im_end = tok.convert_tokens_to_ids(end_of_turn_token(policy))
    merge = getattr(proc.image_processor, "merge_size", None)
    if merge is None:  # not a Qwen image processor (patches + grid): Gemma 3, Idefics3
        return [_encode_generic(policy, r, instruction, im_end) for r in records]
    out: list[Example] = []
    for start in range(0, len(records), chunk):
        recs = records[start : start + chunk]
        prompts = [build_prompt(proc, r.question, len(r.images), instruction) for r in recs]
        images = [img for r in recs for img in r.images]
        enc = proc(text=prompts, images=images or None, padding=False)
        responses = tok([response_text(r) for r in recs], add_special_tokens=False)["input_ids"]
        grids = torch.as_tensor(enc["image_grid_thw"]) if images else torch.empty(0, 3, dtype=torch.long)
        pixels = torch.as_tensor(enc["pixel_values"]) if images else torch.empty(0)
        patches = grids.prod(-1).tolist()
        img_i = patch_i = 0
        for r, ids, mm, resp in zip(recs, enc["input_ids"], enc["mm_token_type_ids"], responses):
            k = len(r.images)
            n_patch = sum(patches[img_i : img_i + k])
            grid = grids[img_i : img_i + k]
            if sum(mm) != n_patch // (merge * merge):
                raise AssertionError(f"record {r.id}: image tokens do not match the image grid")
            resp = [*resp, im_end]
            out.append(
                Example(
                    input_ids=list(ids) + resp,
                    n_prompt=len(ids),
                    mm_token_type_ids=list(mm) + [0] * len(resp),
                    pixel_values=pixels[patch_i : patch_i + n_patch] if k else torch.empty(0),
                    image_grid_thw=grid if k else torch.empty(0, 3, dtype=torch.long),
                )
            )
            img_i += k
            patch_i += n_patch
    return out


def end_of_turn_token(policy: Policy) -> str:
    """The token ending an assistant turn in `policy`'s chat template (its family's first stop token;
    Qwen's ``<|im_end|>`` for Qwen2/2.5-VL)."""
    from mssr.models.families import FAMILIES

    family = FAMILIES.get(getattr(policy.model.config, "model_type", ""))
    return family.stop_tokens[0] if family is not None else "<|im_end|>"


def pad_token_id(policy: Policy) -> int:
    """The padding id of `policy`'s family (Qwen's ``<|endoftext|>``, Gemma 3's ``<pad>`` …)."""
    from mssr.models.families import FAMILIES

    family = FAMILIES.get(getattr(policy.model.config, "model_type", ""))
    return int(policy.tokenizer.convert_tokens_to_ids(family.pad_token if family else "<|endoftext|>"))


def _encode_generic(policy: Policy, record: Any, instruction: str | None, end_id: int) -> Example:
    """One example through a non-Qwen processor (one record per call: images nested per sample), the number
    of image tokens checked against what the processor says an image (Gemma 3) or tile (Idefics3) becomes."""
    proc, tok = policy.processor, policy.tokenizer
    prompt = build_prompt(proc, record.question, len(record.images), instruction)
    images = [list(record.images)] if record.images else None
    enc = proc(text=[prompt], images=images, return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    if record.images:
        config = policy.model.config  # the token the model fills with image features (Gemma 3's processor
        image_id = getattr(config, "image_token_id", None)  # .image_token_id is its <start_of_image>)
        found = ids.count(image_id if image_id is not None else config.image_token_index)
        pixels = enc["pixel_values"]
        if getattr(proc, "image_seq_length", None):  # Gemma 3: a fixed count per image
            expected = len(record.images) * proc.image_seq_length
        else:  # Idefics3: image_seq_len per tile (nested pixels: 1 × tiles × C × H × W)
            expected = pixels.shape[1] * proc.image_seq_len
        if found != expected:
            raise AssertionError(
                f"record {record.id}: {found} image tokens, the processor's images make {expected}"
            )
    resp = [*tok(response_text(record), add_special_tokens=False)["input_ids"], end_id]
    types_key = next((k for k in ("mm_token_type_ids", "token_type_ids") if k in enc), None)
    types = enc[types_key][0].tolist() if types_key else [0] * len(ids)
    extra = {k: enc[k] for k in ("pixel_values", "pixel_attention_mask") if record.images and k in enc}
    return Example(
        input_ids=ids + resp,
        n_prompt=len(ids),
        mm_token_type_ids=types + [0] * len(resp),
        pixel_values=torch.empty(0),
        image_grid_thw=torch.empty(0, 3, dtype=torch.long),
        extra=extra,
        types_key=types_key,
    )


def _collate_extra(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    """The image tensors of non-Qwen examples: flat (images × …) concatenated over the rows that have them;
    nested (1 × images × …, Idefics3) one entry per row, zero-padded to the most images (the model drops
    all-zero images)."""
    out: dict[str, torch.Tensor] = {}
    keys = sorted({k for e in examples for k in e.extra})
    for key in keys:
        parts = [e.extra.get(key) for e in examples]
        ref = next(p for p in parts if p is not None)
        nested = ref.ndim == (5 if key == "pixel_values" else 4)
        if not nested:
            out[key] = torch.cat([p for p in parts if p is not None])
            continue
        most = max(p.shape[1] for p in parts if p is not None)
        rows = []
        for p in parts:
            row = ref.new_zeros((1, most, *ref.shape[2:]))
            if p is not None:
                row[:, : p.shape[1]] = p
            rows.append(row)
        out[key] = torch.cat(rows)
    return out


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with ``labels`` = -100 outside the response."""
    width = max(len(e.input_ids) for e in examples)
    n = len(examples)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    mm = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        L = len(e.input_ids)
        input_ids[i, :L] = torch.tensor(e.input_ids)
        attention[i, :L] = 1
        mm[i, :L] = torch.tensor(e.mm_token_type_ids)
        labels[i, e.n_prompt : L] = input_ids[i, e.n_prompt : L]
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "mm_token_type_ids": mm}
    if any(e.extra or e.types_key != "mm_token_type_ids" for e in examples):  # Gemma 3, Idefics3
        types_key = examples[0].types_key
        del batch["mm_token_type_ids"]
        if types_key is not None:
            batch[types_key] = mm
        batch.update(_collate_extra(examples))
        return batch
    pv = [e.pixel_values for e in examples if e.pixel_values.numel()]
    if pv:
        batch["pixel_values"] = torch.cat(pv)
        batch["image_grid_thw"] = torch.cat([e.image_grid_thw for e in examples if e.image_grid_thw.numel()])
    return batch


def response_nll(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Token-mean negative log-likelihood of the response tokens, and how many there were."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]
    target = labels[:, 1:]
    mask = target != -100
    n = int(mask.sum())
    loss = F.cross_entropy(logits[mask].float(), target[mask], reduction="mean")
    return loss, n


def load_splits(cfg: SFTConfig) -> tuple[Path, list[Any], list[Any], list[Any]]:
    """Dataset directory, train split (trained on), dev = first ``n_dev`` of val (stop checks), test split
    (the reported accuracy: never trained on nor used to choose when to stop; empty if the dataset has none)."""
    from mssr.data import DataError, load_records

    if cfg.data_dir is not None:
        data_dir = Path(cfg.data_dir)
    else:
        from mssr.data.builtin import ensure_dataset

        data_dir = ensure_dataset(cfg.cache_root() / "data", **cfg.data)
    train = load_records(data_dir, "train")
    dev = load_records(data_dir, "val")[: cfg.n_dev] if cfg.n_dev > 0 else []
    try:
        test = load_records(data_dir, "test")[: cfg.n_test_eval] if cfg.n_test_eval > 0 else []
    except DataError:
        test = []
    return data_dir, train, dev, test


def tokenizer_corpus(cfg: SFTConfig, train: Sequence[Any]) -> list[str] | None:
    """The built-in corpus when training on the built-in task; otherwise the dataset's own texts."""
    if cfg.data_dir is None:
        return None  # build_tiny_policy's default: mssr.data.builtin.corpus_texts()
    return [r.question for r in train] + [response_text(r) for r in train]
