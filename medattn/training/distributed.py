"""Data-parallel training on torch's own engine: torchrun starts the processes, DDP keeps them in step.

Under ``torchrun`` (which sets ``LOCAL_RANK``, ``RANK`` and ``WORLD_SIZE``) each process joins one group:
NCCL when a GPU is present, gloo on CPUs. Without torchrun there is one process and no group at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = CPU
    distributed: bool = False  # launched by torchrun (even as a single process)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, evaluates and writes the checkpoint."""
        return self.rank == 0


def start() -> Context:
    """Join torchrun's process group if launched by it; else a single-process context, on the GPU if there is
    one."""
    if "LOCAL_RANK" not in os.environ:
        return Context(device=torch.device("cuda") if torch.cuda.is_available() else CPU)
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Context(dist.get_rank(), dist.get_world_size(), device, distributed=True)


def stop(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def mean_over_ranks(value: float, context: Context) -> float:
    """The mean of a per-process number over every process (itself, when there is one)."""
    if not context.distributed:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=context.device)
    dist.all_reduce(total)
    return total.item() / context.world_size


def share_buffers(model: torch.nn.Module, context: Context) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics).

    DDP broadcasts them at the start of each training forward, so after the last step each rank still
    holds the statistics of its own last batch; without this, ranks would validate (and keep) different
    models.
    """
    if context.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def gathered(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Every rank's ``tensor`` (on the CPU), stacked in rank order: (world size, ...)."""
    if not context.distributed:
        return tensor[None]
    parts = [torch.empty_like(tensor, device=context.device) for _ in range(context.world_size)]
    dist.all_gather(parts, tensor.to(context.device))  # NCCL gathers only what is on the GPU
    return torch.stack(parts).cpu()
