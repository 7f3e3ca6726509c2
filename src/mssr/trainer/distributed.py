"""Data parallelism over torch.distributed (gloo on CPU, NCCL on GPU), launched by torchrun or accelerate.

The design keeps every rank's side state identical: all ranks draw the same global prompt list and take
their shard; rewards, keys and baselines are gathered so advantage statistics and the tracker are global;
gradients are summed with all-reduce after each optimizer mini-batch (losses are normalised by global
counts, so the sum equals the undivided mini-batch's gradient).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Initialise the default process group when launched by torchrun/accelerate (WORLD_SIZE > 1)."""
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    global _OWN_GROUP
    _OWN_GROUP = True
    return True


# whether this module created the default process group (an in-process vLLM engine creates one of its own,
# which it also destroys)
_OWN_GROUP = False


def shard(items: list[Any]) -> list[Any]:
    """This rank's contiguous shard of a list whose length is divisible by the world size."""
    w, r = world_size(), rank()
    if len(items) % w:
        raise ValueError(f"{len(items)} items cannot be split evenly over {w} ranks")
    per = len(items) // w
    return items[r * per : (r + 1) * per]


def all_gather_objects(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor of equal shape from every rank along dim 0 (rank order)."""
    if not is_distributed():
        return t
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, 0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def all_reduce_max(x: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
    return x


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum gradients over ranks (one flat buffer per call); missing gradients count as zeros."""
    if not is_distributed():
        return
    for p in params:  # a rank with no rows in this mini-batch still joins the reduction
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Barrier then destroy the group (clean exits under torchrun on CPU, docs/platform.md pitfall 5)."""
    if is_distributed() and _OWN_GROUP:
        dist.barrier()
        dist.destroy_process_group()
