"""Batches of sentences of similar length, so that little work goes into padding (as the papers' code sorts batches).

Each epoch, the indices are shuffled with a generator seeded by (seed, epoch), cut into pools of
`batch_size * pool_batches` sentences, each pool sorted by length and cut into batches, and the batches shuffled.
The order depends only on (seed, epoch): a resumed run sees the batches an uninterrupted run would.
`drop_last` drops the short last batch; `min_batch_size` drops it only when it is smaller than that (BN-VAE's batch
normalisation needs at least 2 sentences, and its authors skip a batch of 1: BN:text_anneal_fb.py:354-355).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthGroupedBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        drop_last: bool = False,
        min_batch_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
        if len(lengths) == 0:
            raise ValueError("Cannot batch an empty dataset.")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.drop_last = drop_last
        self.min_batch_size = min_batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        if not self.shuffle:
            order = sorted(range(len(self.lengths)), key=lambda i: (-self.lengths[i], i))
            return self._cut(order)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: -self.lengths[i])
            batches.extend(self._cut(chunk))
        permutation = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in permutation]

    def _cut(self, order: list[int]) -> list[list[int]]:
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if batches and len(batches[-1]) < (self.batch_size if self.drop_last else self.min_batch_size):
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        if self.shuffle:
            pool = self.batch_size * self.pool_batches
            # every pool but the last is a whole number of batches; only the last can end short
            full, rest = divmod(len(self.lengths) % pool, self.batch_size)
            full += (len(self.lengths) // pool) * self.pool_batches
        return full + (1 if rest and not self.drop_last and rest >= self.min_batch_size else 0)


__all__ = ["LengthGroupedBatchSampler"]
