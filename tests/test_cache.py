"""data.cache: decoded photos kept in shared memory or on disk give the same pixels, and fresh
ones when a photo or setting changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from mask_age_gender.data.archive import read_train
from mask_age_gender.data.cache import CacheTooLarge
from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.transforms import build_transform

LIGHT = {  # a crop before the resize and random steps after it, as the real recipes have
    "prepare": {"crop": {"_target_": "albumentations.CenterCrop", "height": 60, "width": 40}},
    "augment": {
        "flip": {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
        "contrast": {"_target_": "albumentations.RandomBrightnessContrast", "p": 0.5},
    },
}


def dataset(paths: list[str], cache: str, tmp_path: Path, train: bool = True, **kw) -> FaceDataset:
    size = kw.pop("size", (32, 24))
    transform = build_transform(LIGHT, size, [0.5] * 3, [0.2] * 3, train, "loader")
    return FaceDataset(paths, None, transform, cache, tmp_path / "cache", **kw)


@pytest.fixture(scope="module")
def paths(archive: Path) -> list[str]:
    return read_train(archive, verify_images=False)["path"].tolist()[:24]


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_cached_photos_give_the_same_tensors_as_decoding(
    paths: list[str], tmp_path: Path, cache: str
) -> None:
    plain, cached = dataset(paths, "none", tmp_path), dataset(paths, cache, tmp_path)
    for epoch in range(2):  # the first fills the cache, the second reads it
        for index in range(len(paths)):
            key = (index, 1000 * epoch + index)  # what EpochSampler yields: augmentation seeds
            assert torch.equal(plain[key][0], cached[key][0]), (epoch, index)
    if cache == "memory":
        assert cached.photos.filled.all() and cached.photos.summary()["cache_gb"] > 0
    else:
        assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(paths)


@pytest.mark.slow
def test_loader_workers_fill_one_shared_memory_cache(paths: list[str], tmp_path: Path) -> None:
    data = dataset(paths, "memory", tmp_path, train=False)
    batches = list(DataLoader(data, batch_size=4, num_workers=2))
    assert len(batches) == len(paths) // 4
    assert data.photos.filled.all()  # written by the workers, seen by this process
    first = data.photos.pixels[0].copy()
    data.photos.filled[:] = True
    assert np.array_equal(data.photos(0), first)


def test_disk_cache_never_serves_a_changed_photo_or_setting(
    archive_copy: Path, tmp_path: Path
) -> None:
    photo = read_train(archive_copy, verify_images=False)["path"].iloc[0]
    before = dataset([photo], "disk", tmp_path, train=False)[0][0]
    with Image.open(photo) as image:
        Image.fromarray(255 - np.asarray(image.convert("RGB"))).save(photo, format="JPEG")
    os.utime(photo, ns=(1, 1))  # and a different modification time
    after = dataset([photo], "disk", tmp_path, train=False)[0][0]
    assert not torch.equal(before, after)
    resized = dataset([photo], "disk", tmp_path, train=False, size=(16, 12))[0][0]
    assert resized.shape == (3, 16, 12)
    assert len(list((tmp_path / "cache").glob("photos-*"))) == 2  # one folder per setting


def test_a_memory_cache_above_the_limit_is_refused(paths: list[str], tmp_path: Path) -> None:
    with pytest.raises(
        CacheTooLarge, match="needs 4.61e-05 GB for 20 photos at 32×24.*data.cache_max_gb=1e-05"
    ):
        dataset(paths[:20], "memory", tmp_path, cache_max_gb=1e-5)
