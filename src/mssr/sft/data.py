"""SFT data: the splits, tokenised examples (prompt + worked solution), right-padded batches and the
response-only loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def response_text(record: Any) -> str:
    """The supervised response: the record's worked solution (``extra["solution"]``)."""
    solution = record.extra.get("solution")
    if not solution:
        raise ValueError(f"record {record.id}: no worked solution in extra['solution']; SFT needs one")
    return str(solution)


def encode_example(policy: Policy, record: Any, instruction: str | None) -> Example:
    """Prompt through the processor (so image tokens are expanded exactly as at rollout time), then the
    response tokens and ``<|im_end|>`` appended as ids — the same layout the RL trainer scores."""
    return encode_examples(policy, [record], instruction)[0]


def encode_examples(
    policy: Policy, records: Sequence[Any], instruction: str | None, chunk: int = 64
) -> list[Example]:
    """:func:`encode_example` for many records, calling the processor on chunks (much faster)."""
    proc, tok = policy.processor, policy.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    merge = proc.image_processor.merge_size
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
