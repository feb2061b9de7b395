"""The data side of the shared loop: which examples each step trains on, and how a batch
of them is fetched and collated.

The loop's own order (:class:`BatchOrder`) draws a permutation per epoch from the seed and
the epoch, so the batch of any step is a function of ``(seed, step)``: a run resumes at any
step without replaying the steps before it. A trainer may give its own order
(``Trainer.batch_order``) under the same rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from zoo_core.errors import ConfigError


class BatchOrder:
    """Index batches for step ``s`` as a pure function of ``(seed, s)``.

    Each epoch is a permutation of the dataset drawn from ``(seed, epoch)``; the global
    batch of step ``s`` is slice ``s mod batches_per_epoch`` of epoch ``s // ...``'s
    permutation (the last partial batch is dropped), and process ``rank`` takes its
    contiguous share of it. Iterating from any step needs no replay of earlier ones.
    """

    def __init__(self, size: int, batch: int, seed: int, start: int, rank: int, world: int):
        if batch > size:
            raise ConfigError(f"batch_size {batch} exceeds the dataset's {size} examples")
        if batch % world:
            raise ConfigError(f"batch_size {batch} is not divisible by {world} processes")
        self.size, self.batch, self.seed = size, batch, seed
        self.start, self.rank, self.world = start, rank, world
        self.per_epoch = size // batch
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def indices(self, step: int) -> list[int]:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=generator)
        share = self.batch // self.world
        begin = position * self.batch + self.rank * share
        return self._perm[begin : begin + share].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            yield self.indices(step)
            step += 1


class Stacked(tuple):
    """A batch ``(x, y)`` already stacked by its dataset's ``__getitems__`` (as
    :class:`TensorBatches` stacks one): the loop passes it through as it is."""


class TensorBatches(torch.utils.data.Dataset):
    """A tensor-backed dataset fetched a whole batch per indexing operation (the DataLoader
    calls ``__getitems__``), instead of stacking one example at a time."""

    def __init__(self, data: Any):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        return self.data[index]

    def __getitems__(self, indices: list[int]) -> Stacked:
        index = torch.as_tensor(indices, dtype=torch.int64)
        x = self.data.x
        x = [x[i] for i in indices] if isinstance(x, list) else x[index]
        return Stacked((x, None if self.data.y is None else self.data.y[index]))


def collate(examples: Any) -> Any:
    """Default collation that keeps ``None`` labels as ``None`` (and passes through a batch
    already stacked)."""
    if isinstance(examples, Stacked):
        return tuple(examples)
    if isinstance(examples[0], tuple) and any(part is None for part in examples[0]):
        return tuple(
            None if examples[0][i] is None else collate([e[i] for e in examples])
            for i in range(len(examples[0]))
        )
    return torch.utils.data.default_collate(examples)
