"""Batch-level label mixing for training. timm's ``Mixup`` does Mixup and CutMix (soft targets);
:class:`VerticalCutMix` is the competition winners' variant, written here because no library
has it: the top half of one photo joined to the bottom half of another photo of the same class,
so the label stays exact."""

from __future__ import annotations

import torch


class VerticalCutMix:
    """With probability ``p`` per photo, replace its lower half by the lower half of another
    photo of the same class in the batch (a photo alone in its class is left as it is).

    Device ops of fixed shapes only (no ``unique``, ``nonzero`` or boolean indexing, each a
    host sync per step on a GPU): the photos are sorted by label, in random order within a
    label, and each takes its partner from the next photo of its label, cyclically."""

    def __init__(self, p: float = 0.5, split: float = 0.5):
        self.p, self.split = p, split

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        partner = same_label_partners(labels)
        position = torch.arange(len(labels), device=labels.device)
        chosen = (torch.rand(len(labels), device=labels.device) < self.p) & (partner != position)
        rows = torch.arange(images.shape[-2], device=images.device)
        lower = (rows >= int(images.shape[-2] * self.split)).view(1, 1, -1, 1)
        mixed = torch.where(chosen.view(-1, 1, 1, 1) & lower, images[partner], images)
        return mixed, labels


def same_label_partners(labels: torch.Tensor) -> torch.Tensor:
    """For each photo, another photo of its label chosen at random (itself when it is alone
    in its label): a random cyclic shift within each label's photos."""
    position = torch.arange(len(labels), device=labels.device)
    shuffled = torch.randperm(len(labels), device=labels.device)
    order = shuffled[labels[shuffled].argsort(stable=True)]  # by label, random within one
    ordered = labels[order]
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    ends = torch.ones_like(starts)
    ends[:-1] = starts[1:]  # a label's last photo: the next one starts another label
    run_start = torch.where(starts, position, 0).cummax(dim=0).values
    following = torch.where(ends, run_start, position + 1)  # back to the label's first photo
    return torch.empty_like(order).scatter_(0, order, order[following])
