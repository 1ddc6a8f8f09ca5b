"""Per-channel mean and std of the training photos, for ``normalize: train_stats`` recipes.

Computed once per training split and image size, then cached as JSON: the cache key is a
hash of the split's photo paths, so a validation photo can never leak into the statistics of
another fold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from mask_age_gender.data.dataset import load_rgb
from mask_age_gender.files import write_json_atomic

MAX_PHOTOS = 2000  # an evenly spaced sample is plenty for six numbers


def split_key(paths: Sequence[str], image_size: Sequence[int]) -> str:
    digest = hashlib.sha1("\n".join(sorted(paths)).encode())
    digest.update(str(tuple(image_size)).encode())
    return digest.hexdigest()[:16]


def channel_stats(
    paths: Sequence[str], image_size: Sequence[int], cache_dir: str | Path | None
) -> tuple[list[float], list[float]]:
    """Mean and std per RGB channel on the 0–1 scale, of the photos resized to ``image_size``."""
    cache = Path(cache_dir) / f"stats-{split_key(paths, image_size)}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        stored = json.loads(cache.read_text())
        return stored["mean"], stored["std"]
    height, width = image_size
    sample = sorted(paths)[:: max(1, len(paths) // MAX_PHOTOS)]
    total = np.zeros(3)
    squares = np.zeros(3)
    for path in tqdm(sample, desc="training-set mean/std", leave=False):
        image = Image.fromarray(load_rgb(path)).resize((width, height))
        pixels = np.asarray(image, dtype=np.float64)
        pixels = pixels.reshape(-1, 3) / 255.0
        total += pixels.mean(axis=0)
        squares += (pixels**2).mean(axis=0)
    mean = total / len(sample)
    std = np.sqrt(np.maximum(squares / len(sample) - mean**2, 1e-12))
    result = {"mean": mean.round(6).tolist(), "std": std.round(6).tolist(), "photos": len(sample)}
    if cache is not None:
        write_json_atomic(cache, result)
    return result["mean"], result["std"]
