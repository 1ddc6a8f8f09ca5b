"""The training order as a pure function of (seed, epoch): what makes a resumed run exact.

torch's ``RandomSampler`` draws its order from the global RNG when the epoch starts, so a run
resumed in the middle of an epoch would see other photos than the one it continues. Here each
epoch's order (a permutation, or a weighted draw with replacement) and each photo's
augmentation seed come from ``(seed, epoch)``; Lightning calls ``set_epoch`` every epoch, and
``resume_at`` skips the batches a checkpoint already trained on. The sampler yields
``(index, augmentation seed)`` pairs, which :class:`FaceDataset` understands.

Under DDP each of ``num_replicas`` processes takes every ``num_replicas``-th pair of the epoch's
order (padded by its first pairs to equal shares, as torch's ``DistributedSampler`` does), so a
resumed process skips exactly the batches it trained on. Being a ``DistributedSampler``, it is
left as is by Lightning, which would otherwise wrap it in a sampler of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DistributedSampler


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    seed_words = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(seed_words[0]) << 31 | int(seed_words[1]) >> 1)


class EpochSampler(DistributedSampler):
    """Shuffled (or ``weights``-drawn, with replacement) indices, the same for the same epoch;
    this process's share of them under DDP (``rank`` of ``num_replicas``)."""

    def __init__(
        self,
        size: int,
        seed: int,
        weights: Sequence[float] | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        super().__init__(range(size), num_replicas, rank, shuffle=True, seed=seed)
        self.size = size
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self._skip: dict[int, int] = {}  # epoch → photos already trained on (a resumed run)

    def resume_at(self, epoch: int, photos_done: int) -> None:
        """Start at ``epoch`` and leave out the first ``photos_done`` photos of this share."""
        self.epoch = epoch
        self._skip = {epoch: photos_done}

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = epoch_generator(self.seed, self.epoch)
        if self.weights is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.size, True, generator=generator)
        photo_seeds = torch.randint(0, 2**31 - 1, (self.size,), generator=generator)
        pairs = list(zip(order.tolist(), photo_seeds.tolist(), strict=True))
        pairs += pairs[: self.total_size - self.size]  # equal shares: each rank steps alike
        share = pairs[self.rank : self.total_size : self.num_replicas]
        yield from share[self._skip.get(self.epoch, 0) :]
