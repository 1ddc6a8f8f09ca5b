"""Batch-level label mixing for training. timm's ``Mixup`` does Mixup and CutMix (soft targets);
:class:`VerticalCutMix` is the competition winners' variant, written here because no library
has it: the top half of one photo joined to the bottom half of another photo of the same class,
so the label stays exact."""

from __future__ import annotations

import torch


class VerticalCutMix:
    """With probability ``p`` per photo, replace its lower half by the lower half of another
    photo of the same class in the batch (a photo alone in its class is left as it is)."""

    def __init__(self, p: float = 0.5, split: float = 0.5):
        self.p, self.split = p, split

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        partner = torch.arange(len(labels), device=labels.device)
        for label in labels.unique():
            members = (labels == label).nonzero().flatten()
            shuffled = members[torch.randperm(len(members), device=labels.device)]
            partner[members] = shuffled
        chosen = (torch.rand(len(labels), device=labels.device) < self.p) & (
            partner != torch.arange(len(labels), device=labels.device)
        )
        row = int(images.shape[-2] * self.split)
        mixed = images.clone()
        mixed[chosen, :, row:] = images[partner[chosen], :, row:]
        return mixed, labels
