"""Albumentations pipelines from ``conf/transform/``: augmentation for training only.

A recipe has two named sets of steps: ``prepare`` (deterministic, e.g. a centre crop) used in
every stage, and ``augment`` (random) used in training only; a step set to null is skipped.
The resize to ``data.image_size`` follows ``prepare``, so augmentation works on small images;
normalisation and the tensor come last, or only the tensor (uint8) when ``data.normalize_on``
is ``device`` and the model normalises. Everything up to the resize is the same in every
stage and for every epoch, so a photo cache (``data.cache``) stores its result. A ``prepare``
step may need each photo's face box (``face_crop``, ``data/faces/crop.py``):
``Pipeline.prepare_image(image, box)`` passes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from hydra.utils import instantiate

from mask_age_gender.data.faces.crop import BOX_KEY, FaceCrop

NORMALIZE_ON = ("auto", "loader", "device")  # data.normalize_on: where pixels are normalised


@dataclass
class Pipeline:
    """``prepare`` (decoded photo → cropped, resized uint8) then ``finish`` (augmentation in
    training, normalisation, tensor). ``key`` names ``prepare``'s settings, for caches."""

    prepare: A.Compose
    finish: A.Compose
    key: str
    size: tuple[int, int]  # (H, W) that prepare ends with
    normalize_on: str  # device: finish ends with a uint8 tensor, which the model normalises

    @property
    def crops_faces(self) -> bool:
        """Whether ``prepare`` includes a face crop (the photos need boxes)."""
        return any(isinstance(step, FaceCrop) for step in self.prepare.transforms)

    def __call__(self, image: np.ndarray, box: Sequence[float] | None = None) -> dict[str, Any]:
        return {"image": self.finish_image(self.prepare_image(image, box))}

    def prepare_image(self, image: np.ndarray, box: Sequence[float] | None = None) -> np.ndarray:
        """``prepare`` of a decoded photo; ``box`` (x1, y1, x2, y2, NaN: no face) is the
        photo's face box, which a face crop needs and everything else ignores."""
        return self.prepare(image=image, **self._box_target(box))["image"]

    def prepare_with_mask(
        self, image: np.ndarray, box: Sequence[float] | None, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``prepare`` of a photo and of an H×W mask of its pixels alike: the mask is cut and
        resized as the photo is (nearest neighbour), so it marks the same pixels after."""
        out = self.prepare(image=image, mask=mask, **self._box_target(box))
        return out["image"], out["mask"]

    def _box_target(self, box: Sequence[float] | None) -> dict[str, tuple]:
        if box is None or not self.crops_faces:
            return {}  # a face crop refuses a call without its box
        return {BOX_KEY: tuple(box)}

    def finish_image(self, image: np.ndarray) -> torch.Tensor:
        """``finish`` of a prepared photo; uint8 still when the model is to normalise it."""
        tensor = self.finish(image=image)["image"]
        if self.normalize_on == "device" and tensor.dtype != torch.uint8:
            raise TypeError(
                f"a transform step gave {tensor.dtype} pixels, but data.normalize_on=device "
                "normalises uint8 ones in the model: use data.normalize_on=loader with it"
            )
        return tensor

    def set_random_seed(self, seed: int) -> None:
        self.finish.set_random_seed(seed)  # prepare draws no random numbers

    @property
    def transforms(self) -> list:
        return [*self.prepare.transforms, *self.finish.transforms]


def build_transform(
    recipe: Mapping,
    image_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    normalize_on: str,
) -> Pipeline:
    """The pipeline for one stage: prepare, resize (+ augment in training), normalize, to
    tensor; where ``normalize_on`` is ``device`` the tensor stays uint8 for the model."""
    normalize_on = normalize_where(normalize_on)
    height, width = image_size
    prepare_steps = dict(recipe.get("prepare") or {})
    steps = [instantiate(step) for step in prepare_steps.values() if step]
    steps.append(A.Resize(height=height, width=width))
    finish = []
    if train:
        finish += [instantiate(step) for step in (recipe.get("augment") or {}).values() if step]
    if normalize_on == "loader":
        finish.append(A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0))
    finish.append(ToTensorV2())
    settings = json.dumps([prepare_steps, [height, width]], sort_keys=True, default=str)
    key = hashlib.sha1(settings.encode()).hexdigest()[:12]
    return Pipeline(A.Compose(steps), A.Compose(finish), key, (height, width), normalize_on)


def normalize_where(setting: str) -> str:
    """``data.normalize_on`` made concrete. ``auto`` is ``device`` where CUDA is: uint8 batches
    are a quarter of the bytes through worker queues and host-to-GPU copies. It is ``loader``
    elsewhere: on the 2-core CPU ``make bench`` trains as fast either way (within noise, the
    model's float normalisation a few % behind albumentations' lookup table), so nothing pays."""
    if setting not in NORMALIZE_ON:
        raise ValueError(f"data.normalize_on must be one of {NORMALIZE_ON}, got {setting!r}")
    if setting == "auto":
        return "device" if torch.cuda.is_available() else "loader"
    return setting
