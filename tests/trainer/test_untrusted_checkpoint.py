"""A checkpoint is data, never code: a pickled object planted in a shared run directory is refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mssr.cli.main import main
from mssr.trainer.checkpoint import latest_checkpoint, load_state

from .launch import config_args


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))  # runs at unpickling time under weights_only=False


def test_a_planted_object_in_trainer_state_is_refused_and_never_runs(make_config, tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    assert main(["train", *config_args(make_config("steps=2", "checkpoint.every=1", out=out))]) == 0
    ckpt = latest_checkpoint(out / "checkpoints")
    state = load_state(ckpt / "trainer_state.pt")  # what mssr wrote loads as plain data
    assert state["step"] == 2 and isinstance(state["rng"]["torch"], torch.Tensor)
    state["counters"] = {"evil": _Planted(marker)}
    torch.save(state, ckpt / "trainer_state.pt")
    capsys.readouterr()
    rc = main(["train", *config_args(make_config("steps=3", out=out))])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and not marker.exists()
    assert "holds objects other than tensors and plain data and was not loaded" in err
    assert "Traceback" not in err
