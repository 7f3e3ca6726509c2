"""Atomic, complete checkpoints: written to a temporary directory, fsynced, then renamed into place.

A checkpoint directory ``step_000123/`` holds ``policy/`` (``save_pretrained`` of model + processor: a
loadable export, merged under LoRA), ``trainer_state.pt`` (optimizer, scheduler, RNG states, sampler, tracker,
ρ, step, counters), ``config.yaml`` and a ``COMPLETE`` marker written last; under FSDP also ``sharded/``
(``torch.distributed.checkpoint`` of the sharded model and optimizer, which resume reads), under LoRA
``adapter.pt`` (the adapter weights resume reads). Anything without the marker (a kill -9 mid-write) is ignored and
cleaned up on the next save.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch

from mssr.io import fsync_dir, fsync_tree

STEP_DIR = re.compile(r"^step_(\d{6,})$")
MARKER = "COMPLETE"


def prepare_checkpoint(ckpt_root: Path, step: int) -> Path:
    """A fresh temporary directory for step ``step`` (filled by one or, with sharded state, all ranks)."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_root / f".tmp-step_{step:06d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def publish_checkpoint(ckpt_root: Path, step: int, tmp: Path, *, keep_last: int = 2) -> Path:
    """Mark ``tmp`` complete, fsync it and rename it to ``step_<step>``; prune older checkpoints."""
    final = ckpt_root / f"step_{step:06d}"
    (tmp / MARKER).write_text(f"{step}\n")
    fsync_tree(tmp)
    if final.exists():  # re-saving the same step (e.g. interrupt right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(ckpt_root)
    _prune(ckpt_root, keep_last)
    return final


def remove_temporaries(ckpt_root: Path) -> None:
    """Remove unpublished temporary folders (a write that failed or was killed). Only the run holding the
    directory's lock calls this, so none of them is being written."""
    if ckpt_root.is_dir():
        for stale in ckpt_root.glob(".tmp-step_*"):
            shutil.rmtree(stale, ignore_errors=True)


def _prune(ckpt_root: Path, keep_last: int) -> None:
    remove_temporaries(ckpt_root)
    done = complete_checkpoints(ckpt_root)
    for old in done[: max(0, len(done) - max(1, keep_last))]:
        shutil.rmtree(old, ignore_errors=True)


def complete_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not ckpt_root.is_dir():
        return []
    found = []
    for p in ckpt_root.iterdir():
        m = STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / MARKER).is_file() and (p / "trainer_state.pt").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    done = complete_checkpoints(ckpt_root)
    return done[-1] if done else None


def save_state(path: Path, state: dict) -> None:
    torch.save(state, path)


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint file holds more than tensors and plain data (loading it could run code)."""


def load_state(path: Path) -> dict:
    """Read a state file as tensors and plain data only (``weights_only=True``): a pickled object planted in a
    shared checkpoint is refused, never run. Every state mssr writes is plain data, older ones included."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((x for x in first if "Unsupported global" in x), first[0] if first else "")
        raise UnsafeCheckpointError(
            f"{path} holds objects other than tensors and plain data and was not loaded (loading it could run "
            f"code; {detail.strip()}). mssr writes only plain data: resume from a checkpoint this version wrote, "
            f"or start the run afresh with checkpoint.resume=never in another output_dir"
        ) from None
