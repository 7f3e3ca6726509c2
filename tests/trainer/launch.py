"""Running the trainer in another process: a config as CLI overrides, and the torchrun command line."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from mssr.config import to_dict


def config_args(cfg: Any) -> list[str]:
    """The dotted overrides that rebuild ``cfg`` (scalars; lists and the builtin mapping keep defaults)."""

    def flat(d: dict, prefix: str = ""):
        for k, v in d.items():
            if isinstance(v, dict):
                if k != "builtin":
                    yield from flat(v, f"{prefix}{k}.")
            elif not isinstance(v, list) and v is not None:
                yield f"{prefix}{k}={v}"

    return list(flat(to_dict(cfg)))


def torchrun_cmd(args: list[str], nproc: int = 2) -> list[str]:
    """``python -m torch.distributed.run … -m mssr train ARGS`` on loopback with a port of its own."""
    port = 29500 + (os.getpid() + int(time.time())) % 2000
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        "-m",
        "mssr",
        "train",
        *args,
    ]


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a trainer subprocess: one thread, loopback rendezvous."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", **extra}
