"""torchrun / DDP plumbing: one process per device, rank 0 writes.

``setup()`` reads the torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and initialises the default process group once: NCCL when CUDA is available, gloo
otherwise (CPU tests run two gloo processes). Without those variables it is a no-op single-process context.

Rules the trainer follows: every rank builds the same model from the same seed and DDP broadcasts rank 0's
weights at wrap time; each rank reads a disjoint shard of the train split (``StoreDataset(rank=,
world_size=)``); decisions that must agree (stop for budget, skip a non-finite step, early stop) are
all-reduced or broadcast from rank 0; only rank 0 validates, logs and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank facts from the torchrun environment (single process when unset)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def setup(backend: str | None = None) -> DistInfo:
    """Initialise the default process group if the environment asks for more than one process."""
    import torch
    import torch.distributed as dist

    info = env_info()
    if info.enabled and not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def cleanup() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    import torch.distributed as dist

    if active():
        dist.barrier()


def max_value(value: float, device=None) -> float:
    """The largest ``value`` over all ranks (``value`` itself without DDP)."""
    if not active():
        return float(value)
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def any_true(flag: bool, device=None) -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    return max_value(1.0 if flag else 0.0, device) > 0


def broadcast(obj, src: int = 0):
    """``obj`` from rank ``src`` on every rank (picklable objects)."""
    if not active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def unwrap(model):
    """The module inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)


__all__ = ["DistInfo", "active", "any_true", "barrier", "broadcast", "cleanup", "env_info", "setup", "unwrap"]
