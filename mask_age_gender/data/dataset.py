"""Photos as tensors: decode to RGB (``photos.py``), prepare (crop, resize; cached
with ``data.cache``), then the rest of the stage's pipeline. A face crop gets each photo's
box from the dataset, which holds them in the photos' order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mask_age_gender.data.cache import PhotoCache
from mask_age_gender.data.faces.crop import photo_tags
from mask_age_gender.data.photos import load_rgb
from mask_age_gender.data.transforms import Pipeline


class FaceDataset(Dataset):
    """(image tensor, 18-class label, index) triples; label -1 where the truth is unknown (eval).

    The index names the photo in error messages. A key ``(index, seed)`` (what
    :class:`~mask_age_gender.data.sampler.EpochSampler` yields) seeds the photo's augmentation,
    so training is repeatable whatever the workers and wherever a run resumed. ``boxes``: one
    face box ``(x1, y1, x2, y2)`` per photo, NaN where none was found
    (``faces.resolve.boxes_for``); required when the transform crops to faces.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int] | None,
        transform: Pipeline,
        cache: str = "none",
        cache_dir: str | Path | None = None,
        cache_max_gb: float = 8.0,
        boxes: np.ndarray | None = None,
    ):
        self.paths = list(paths)
        self.labels = [-1] * len(self.paths) if labels is None else [int(y) for y in labels]
        self.transform = transform
        if transform.crops_faces and boxes is None:
            raise ValueError("the transform crops to faces: give FaceDataset the photos' boxes")
        if boxes is not None and len(boxes) != len(self.paths):
            raise ValueError(f"{len(boxes)} face boxes for {len(self.paths)} photos")
        self.boxes = boxes if transform.crops_faces else None
        tags = None if self.boxes is None else photo_tags(self.boxes)
        self.photos = PhotoCache(
            cache,
            self.paths,
            self.prepare,
            transform.size,
            transform.key,
            cache_dir,
            cache_max_gb,
            tags,
        )

    def prepare(self, index: int) -> np.ndarray:
        """Photo ``index`` decoded and prepared (cropped, resized), uncached: what the
        network sees before augmentation and normalisation."""
        box = None if self.boxes is None else self.boxes[index]
        return self.transform.prepare_image(load_rgb(self.paths[index]), box)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if seed is not None:
            self.transform.set_random_seed(seed)
        image = self.transform.finish_image(self.photos(index))
        return image, self.labels[index], index
