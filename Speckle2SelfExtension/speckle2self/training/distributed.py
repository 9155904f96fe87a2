"""Data-parallel training across processes (torchrun), and the single-process case as its trivial form.

Every rank draws the same global batch from the same seeded generator and trains on its own
shard; DistributedDataParallel averages the gradients, so N processes compute exactly the step one
process would take on the whole batch. Only rank 0 writes files. A stop request on any rank
stops all of them at the same step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import InputError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    comm_device: str = "cpu"
    """Where small control tensors live: NCCL only reduces CUDA tensors, gloo CPU ones."""

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "DistContext":
        """Join the process group torchrun set up (WORLD_SIZE > 1); otherwise a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        comm = "cpu"
        if device.type == "cuda":
            local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(local)
            comm = str(local)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), comm_device=comm)

    def local_device(self, device: torch.device) -> torch.device:
        """This process's own GPU under torchrun (LOCAL_RANK), else `device` unchanged."""
        if self.active and device.type == "cuda":
            return torch.device(self.comm_device)
        return device

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch."""
        if not self.active:
            return batch
        if batch.shape[0] % self.world:
            raise InputError(f"batch size {batch.shape[0]} must be divisible by the {self.world} processes")
        size = batch.shape[0] // self.world
        return batch[self.rank * size:(self.rank + 1) * size]

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on any rank."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The average over ranks of each value (each rank's loss is over its shard only)."""
        if not self.active:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return {k: float(v) / self.world for k, v in zip(keys, t.cpu())}

    def wrap(self, net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.active:
            return net
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
