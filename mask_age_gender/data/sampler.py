"""The training order as a pure function of (seed, epoch): what makes a resumed run exact.

torch's ``RandomSampler`` draws its order from the global RNG when the epoch starts, so a run
resumed in the middle of an epoch would see other photos than the one it continues. Here each
epoch's order (a permutation, or a weighted draw with replacement) and each photo's
augmentation seed come from ``(seed, epoch)``; Lightning calls ``set_epoch`` every epoch, and
``resume_at`` skips the batches a checkpoint already trained on. The sampler yields
``(index, augmentation seed)`` pairs, which :class:`FaceDataset` understands.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    seed_words = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(seed_words[0]) << 31 | int(seed_words[1]) >> 1)


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled (or ``weights``-drawn, with replacement) indices, the same for the same epoch."""

    def __init__(self, size: int, seed: int, weights: Sequence[float] | None = None):
        self.size, self.seed = size, seed
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch = 0
        self._skip: dict[int, int] = {}  # epoch → photos already trained on (a resumed run)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, photos_done: int) -> None:
        """Start at ``epoch`` and leave out its first ``photos_done`` photos."""
        self.epoch = epoch
        self._skip = {epoch: photos_done}

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = epoch_generator(self.seed, self.epoch)
        if self.weights is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.size, True, generator=generator)
        photo_seeds = torch.randint(0, 2**31 - 1, (self.size,), generator=generator)
        start = self._skip.get(self.epoch, 0)
        yield from zip(order[start:].tolist(), photo_seeds[start:].tolist(), strict=True)
