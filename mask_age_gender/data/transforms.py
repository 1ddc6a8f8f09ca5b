"""Albumentations pipelines from ``conf/transform/``: augmentation for training only.

A recipe has two named sets of steps: ``prepare`` (deterministic, e.g. a centre crop) used in
every stage, and ``augment`` (random) used in training only; a step set to null is skipped.
The resize to ``data.image_size`` follows ``prepare``, so augmentation works on small images;
normalisation and the tensor come last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import albumentations as A
from albumentations.pytorch import ToTensorV2
from hydra.utils import instantiate


def build_transform(
    recipe: Mapping,
    image_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
) -> A.Compose:
    """The pipeline for one stage: prepare, resize (+ augment in training), normalize, to tensor."""
    height, width = image_size
    steps = [instantiate(step) for step in (recipe.get("prepare") or {}).values() if step]
    steps.append(A.Resize(height=height, width=width))
    if train:
        steps += [instantiate(step) for step in (recipe.get("augment") or {}).values() if step]
    steps += [A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps)
