"""One process or many (under ``torchrun``): the few collective operations the loop needs.

With ``WORLD_SIZE`` > 1 (set by torchrun) the loop runs DistributedDataParallel over the
``gloo`` backend on the CPU or ``nccl`` on CUDA; every operation here is a no-op otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo_core.devices import resolve_device
from zoo_core.settings import get_settings


@dataclass
class Distributed:
    rank: int
    world_size: int
    device: torch.device
    initialised: bool = False

    @classmethod
    def from_environment(cls, device: str) -> Distributed:
        settings = get_settings()
        target = resolve_device(device)
        if target.type == "cuda" and target.index is None:
            target = torch.device("cuda", settings.local_rank)
        if settings.world_size <= 1:
            return cls(0, 1, target)
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if target.type == "cuda" else "gloo"
            if target.type == "cuda":
                torch.cuda.set_device(target)
            dist.init_process_group(backend=backend, init_method="env://")
        return cls(settings.rank, settings.world_size, target, initialised=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module, *, find_unused: bool) -> nn.Module:
        if self.world_size == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)

    def _reduce(self, value: torch.Tensor, op) -> torch.Tensor:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(value, op=op)
        return value

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any."""
        import torch.distributed as dist

        value = torch.tensor([int(flag)], device=self._collective_device())
        return bool(self._reduce(value, dist.ReduceOp.MAX))

    def all_finite(self, loss: torch.Tensor) -> bool:
        """True on every process if the loss is finite on all of them."""
        finite = bool(torch.isfinite(loss).all())
        return not self.any(not finite)

    def mean(self, record: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the processes (the global batch's metric, as the shares
        are equal)."""
        if self.world_size == 1 or not record:
            return record
        import torch.distributed as dist

        keys = sorted(record)
        values = torch.tensor([record[k] for k in keys], dtype=torch.float64,
                              device=self._collective_device())  # fmt: skip
        self._reduce(values, dist.ReduceOp.SUM)
        return {k: v / self.world_size for k, v in zip(keys, values.tolist(), strict=True)}

    def first_on_main(self, fn: Callable[[], Any], *, share: bool = False) -> Any:
        """Run ``fn`` on rank 0 first, then (unless ``share``: rank 0's result is sent) on the
        others; an error on rank 0 is raised on every rank as the same type."""
        if self.world_size == 1:
            return fn()
        import torch.distributed as dist

        if self.is_main:
            try:
                result, failure = fn(), None
            except Exception as exc:
                result, failure = None, (type(exc), " ".join(str(exc).split()))
            box = [(result if share else None, failure)]
            dist.broadcast_object_list(box, src=0)
            if failure is not None:
                raise _rebuild(*failure)
            return result
        box = [None]
        dist.broadcast_object_list(box, src=0)
        shared, failure = box[0]
        if failure is not None:
            raise _rebuild(*failure)
        return shared if share else fn()

    def gather_object(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (on every rank)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def _collective_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def _rebuild(kind: type[BaseException], message: str) -> BaseException:
    """An exception of ``kind`` carrying ``message`` (whatever its constructor takes)."""
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    return error
