"""Photos as tensors: decode to RGB whatever the file's mode, prepare (crop, resize; cached
with ``data.cache``), then the rest of the stage's pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mask_age_gender.data.cache import PhotoCache
from mask_age_gender.data.transforms import Pipeline

JPEG_SUFFIXES = (".jpg", ".jpeg")


def read_jpeg_opencv(path: str) -> np.ndarray | None:
    """OpenCV's H×W×3 RGB decode of a JPEG, EXIF orientation ignored as PIL does; None if it
    cannot read the file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_pil(path: str) -> np.ndarray:
    """PIL's H×W×3 RGB decode of any photo, converting L, RGBA, P, CMYK… to RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_rgb(path: str) -> np.ndarray:
    """H×W×3 uint8 RGB array of a photo, converting L, RGBA, P, CMYK… to RGB.

    JPEGs decode with OpenCV: on 384×512 photos 1.05–1.25× PIL's speed with the same pixels
    (``python -m mask_age_gender.bench`` compares PIL, OpenCV and torchvision). Other files,
    and any OpenCV cannot read, go through PIL, which also names what is wrong.
    """
    if path.lower().endswith(JPEG_SUFFIXES):
        image = read_jpeg_opencv(path)
        if image is not None:
            return image
    try:
        return read_pil(path)
    except Exception as err:  # name the photo: a bare worker traceback does not
        raise OSError(f"photo {path} cannot be decoded: {err}") from err


class FaceDataset(Dataset):
    """(image tensor, 18-class label, index) triples; label -1 where the truth is unknown (eval).

    The index names the photo in error messages. A key ``(index, seed)`` (what
    :class:`~mask_age_gender.data.sampler.EpochSampler` yields) seeds the photo's augmentation,
    so training is repeatable whatever the workers and wherever a run resumed.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int] | None,
        transform: Pipeline,
        cache: str = "none",
        cache_dir: str | Path | None = None,
        cache_max_gb: float = 8.0,
    ):
        self.paths = list(paths)
        self.labels = [-1] * len(self.paths) if labels is None else [int(y) for y in labels]
        self.transform = transform
        self.photos = PhotoCache(
            cache, self.paths, self._prepare, transform.size, transform.key, cache_dir, cache_max_gb
        )

    def _prepare(self, path: str) -> np.ndarray:
        return self.transform.prepare(image=load_rgb(path))["image"]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        if seed is not None:
            self.transform.set_random_seed(seed)
        image = self.transform.finish_image(self.photos(index))
        return image, self.labels[index], index
