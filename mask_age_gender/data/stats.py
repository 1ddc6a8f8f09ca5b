"""Per-channel mean and std of the training photos, for ``normalize: train_stats`` recipes.

The statistics are those of the pixels the network receives: every training photo, decoded,
through the recipe's ``prepare`` steps (e.g. a centre crop) and the resize to
``data.image_size``, i.e. ``Pipeline.prepare``. All photos count, not a sample: in sorted
order a person's seven photos (mask1…mask5, incorrect_mask, normal) are neighbours, so an
evenly spaced sample of the real archive (step 7) saw one photo kind only. Sums are kept as
integers (exact) and weighted by pixel count.

Computed once per training split and prepare settings, then cached as JSON: the cache key is
a hash of the split's photo paths with each photo's size and modification time (as the photo
cache's file names, :mod:`~mask_age_gender.data.cache`), of ``Pipeline.key`` (prepare steps
and image size) and, for a face crop, of the photos' face boxes, so a validation photo can
never leak into the statistics of another fold and a replaced photo or a changed crop, box or
size computes afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from mask_age_gender.data.photos import load_rgb
from mask_age_gender.data.transforms import Pipeline
from mask_age_gender.files import write_json_atomic

log = logging.getLogger(__name__)


def stats_key(paths: Sequence[str], prepare_key: str, boxes: np.ndarray | None = None) -> str:
    """Names the statistics of ``paths`` prepared as ``Pipeline.key`` says, each photo cut to
    its row of ``boxes`` if given (a face crop). Each photo counts by path, size and
    modification time: a photo replaced under the same name changes the key."""
    order = sorted(range(len(paths)), key=lambda i: paths[i])
    files = []
    for i in order:
        stat = os.stat(paths[i])
        files.append(f"{paths[i]}|{stat.st_size}|{stat.st_mtime_ns}")
    digest = hashlib.sha1("\n".join(files).encode())
    digest.update(f"\n{prepare_key}".encode())
    if boxes is not None:  # in path order, as the paths: the same split in another order agrees
        digest.update(np.ascontiguousarray(np.asarray(boxes, np.float64)[order]).tobytes())
    return digest.hexdigest()[:16]


def channel_stats(
    paths: Sequence[str],
    pipeline: Pipeline,
    cache_dir: str | Path | None,
    photos: Callable[[int], np.ndarray] | None = None,
    boxes: np.ndarray | None = None,
) -> tuple[list[float], list[float]]:
    """Mean and std per RGB channel on the 0–1 scale, over every pixel of every photo of
    ``paths`` as ``pipeline.prepare`` gives it. ``photos(i)``, if given, is photo ``i`` already
    prepared (a :class:`~mask_age_gender.data.cache.PhotoCache`: the decoding then fills the
    training cache instead of being done twice). ``boxes``: each photo's face box, where
    ``pipeline`` crops to faces (``FaceDataset.boxes``)."""
    if not cache_dir:
        return _computed(paths, pipeline, photos, boxes)
    key = stats_key(paths, pipeline.key, boxes if pipeline.crops_faces else None)
    cache = Path(cache_dir) / f"stats-{key}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.with_suffix(".lock")):  # one process computes; the others wait, read
        if cache.is_file():
            stored = json.loads(cache.read_text())
            log.info("training-set mean/std: computed before, read from %s", cache)
            return stored["mean"], stored["std"]
        return _computed(paths, pipeline, photos, boxes, cache)


def _computed(
    paths: Sequence[str],
    pipeline: Pipeline,
    photos: Callable[[int], np.ndarray] | None,
    boxes: np.ndarray | None,
    cache: Path | None = None,
) -> tuple[list[float], list[float]]:
    """Mean and std computed over every photo, written whole to ``cache`` if given."""
    if photos is None:

        def photos(i: int) -> np.ndarray:
            return pipeline.prepare_image(load_rgb(paths[i]), None if boxes is None else boxes[i])

    total = np.zeros(3, np.int64)  # exact: 255² × pixels stays far below 2⁶³
    squares = np.zeros(3, np.int64)
    pixels = 0
    started = time.monotonic()
    log.info("training-set mean/std: %d photos", len(paths))  # a bar only on a terminal
    bar = tqdm(
        range(len(paths)), desc="training-set mean/std", unit="photo", leave=False, disable=None
    )
    for index in bar:
        image = photos(index)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"{paths[index]}: prepared to {image.shape} {image.dtype}, not RGB uint8"
            )
        values = image.reshape(-1, 3).astype(np.int64)
        total += values.sum(axis=0)
        squares += (values * values).sum(axis=0)
        pixels += len(values)
    if not pixels:
        raise ValueError("no training photos to compute the mean/std of")
    mean = total / (255.0 * pixels)
    log.info("training-set mean/std: done in %.1f s", time.monotonic() - started)
    std = np.sqrt(np.maximum(squares / (255.0**2 * pixels) - mean**2, 1e-12))
    result = {
        "mean": mean.round(6).tolist(),
        "std": std.round(6).tolist(),
        "photos": len(paths),
        "pixels_per_channel": pixels,
        "prepare_key": pipeline.key,
    }
    if cache is not None:
        write_json_atomic(cache, result)
    return result["mean"], result["std"]
