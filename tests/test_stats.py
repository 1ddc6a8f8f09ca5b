"""Training-set mean/std (``normalize: train_stats``): over every photo, as the network sees it.

The large archive has the real one's shape where it matters: seven photos a person, named
as in the competition, so that in sorted order each person's photos are neighbours; more
than 2,000 people, so the old evenly spaced sample (``sorted(paths)[::len // 2000]``) took
every 7th photo, i.e. one photo kind. Here the kinds differ in brightness on purpose, and the
border of each photo differs from its centre, so a crop changes the statistics.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mask_age_gender.data.stats import channel_stats
from mask_age_gender.data.transforms import build_transform

KINDS = ("mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal")
LEVEL = dict(zip(KINDS, (70, 80, 90, 100, 110, 200, 160), strict=True))  # brightness per kind
PEOPLE = 2100  # 14,700 photos: the old sample's step is 14,700 // 2,000 = 7
PHOTO = (32, 24)  # H, W of the photos on disk
SIZE = (20, 16)  # H, W the network sees
CROP = (16, 12)  # the centre crop of the crop recipe
PLAIN = {"normalize": "train_stats", "prepare": {}, "augment": {}}
CROPPED = {
    **PLAIN,
    "prepare": {
        "center_crop": {
            "_target_": "albumentations.CenterCrop",
            "height": CROP[0],
            "width": CROP[1],
        }
    },
}


def pipeline(recipe: dict, size: tuple[int, int] = SIZE):
    return build_transform(recipe, size, [0.5] * 3, [0.5] * 3, train=False, normalize_on="loader")


@pytest.fixture(scope="session")
def many_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """14,700 small PNGs, unsorted: path → the RGB pixels written (lossless, so also read)."""
    root = tmp_path_factory.mktemp("stats_archive")
    rng = np.random.default_rng(0)
    tint = np.array([1.0, 0.8, 0.6])  # channels that differ
    border = np.zeros((*PHOTO, 3))
    border[:4], border[-4:], border[:, :3], border[:, -3:] = 50, 50, 50, 50  # outside the crop
    photos = {}
    for person in rng.permutation(PEOPLE):
        folder = root / f"{person:06d}_female_Asian_{20 + person % 40}"
        folder.mkdir()
        offsets = rng.normal(0, 10, len(KINDS))
        noise = rng.normal(0, 20, (len(KINDS), *PHOTO, 3))
        for k, kind in enumerate(KINDS):
            pixels = (LEVEL[kind] + offsets[k] + noise[k]) * tint + border
            path = str(folder / f"{kind}.png")
            image = np.clip(pixels, 0, 255).astype(np.uint8)
            cv2.imwrite(
                path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 0]
            )
            photos[path] = image
    return photos


def exact(images: list[np.ndarray], crop: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """The statistics over every photo, crop and resize by OpenCV here, not by the code tested."""
    photos = []
    for image in images:
        if crop is not None:
            top, left = (PHOTO[0] - crop[0]) // 2, (PHOTO[1] - crop[1]) // 2
            image = image[top : top + crop[0], left : left + crop[1]]
        photos.append(cv2.resize(image, SIZE[::-1], interpolation=cv2.INTER_LINEAR))
    pixels = np.stack(photos).reshape(-1, 3) / 255.0
    return pixels.mean(axis=0), pixels.std(axis=0)


@pytest.mark.slow  # 14,700 photos written and read
def test_stats_cover_every_photo_kind_and_follow_the_crop(
    many_photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    paths = list(many_photos)
    full_mean, full_std = exact(list(many_photos.values()), None)
    mean, std = channel_stats(paths, pipeline(PLAIN), tmp_path)
    assert np.allclose(mean, full_mean, atol=1e-3), (mean, full_mean)
    assert np.allclose(std, full_std, atol=1e-3), (std, full_std)

    # what the old evenly spaced sample saw: one photo kind, far from the whole set
    sample = sorted(paths)[:: len(paths) // 2000]
    assert len(sample) == PEOPLE and {Path(p).stem for p in sample} == {"incorrect_mask"}
    sample_mean, sample_std = exact([many_photos[p] for p in sample], None)
    assert np.abs(sample_mean - full_mean).min() > 0.1, (sample_mean, full_mean)
    assert np.abs(sample_std - full_std).min() > 0.03, (sample_std, full_std)

    # the statistics are those of the cropped pixels when the recipe crops
    crop_mean, crop_std = channel_stats(paths, pipeline(CROPPED), tmp_path)
    exact_crop_mean, exact_crop_std = exact(list(many_photos.values()), CROP)
    assert np.allclose(crop_mean, exact_crop_mean, atol=1e-3), (crop_mean, exact_crop_mean)
    assert np.allclose(crop_std, exact_crop_std, atol=1e-3), (crop_std, exact_crop_std)
    assert np.abs(np.subtract(crop_mean, mean)).min() > 0.05
    assert np.abs(np.subtract(crop_std, std)).min() > 0.01

    # two cache entries (one per crop), each read back without a photo decoded
    assert len(list(tmp_path.glob("stats-*.json"))) == 2

    def no_decoding(index: int) -> np.ndarray:
        raise AssertionError("cached statistics decoded a photo")

    for recipe, expected in ((PLAIN, (mean, std)), (CROPPED, (crop_mean, crop_std))):
        assert channel_stats(paths, pipeline(recipe), tmp_path, no_decoding) == expected


def test_the_cache_key_covers_paths_crop_and_size(archive: Path, tmp_path: Path) -> None:
    paths = sorted(str(p) for p in (archive / "train" / "images").glob("*/[!.]*"))
    pipelines = [pipeline(PLAIN), pipeline(CROPPED), pipeline(PLAIN, (24, 16))]
    for recipe in pipelines:
        channel_stats(paths, recipe, tmp_path)
    channel_stats(paths[:-7], pipelines[0], tmp_path)  # another split
    channel_stats(list(reversed(paths)), pipelines[0], tmp_path)  # the same split
    assert len(list(tmp_path.glob("stats-*.json"))) == 4


def test_stats_are_those_of_the_pixels(tmp_path: Path) -> None:
    """Known pixel arrays, saved losslessly: the expected numbers need no decoder or resize."""
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (32, 24, 3), dtype=np.uint8) for _ in range(5)]
    photos[0][..., 0] = 255  # channels that differ
    paths = [str(tmp_path / f"{k}.png") for k in range(len(photos))]
    for photo, path in zip(photos, paths, strict=True):
        Image.fromarray(photo).save(path)
    pixels = np.stack(photos) / 255.0
    mean, std = channel_stats(paths, pipeline(PLAIN, (32, 24)), None)  # nothing resized
    assert np.allclose(mean, pixels.mean(axis=(0, 1, 2)), atol=1e-6)
    assert np.allclose(std, pixels.std(axis=(0, 1, 2)), atol=1e-6)
    # resized, an even colour stays that colour: the mean exactly, the spread nil
    flat = np.broadcast_to(np.array([10, 128, 250], np.uint8), (32, 24, 3))
    Image.fromarray(np.ascontiguousarray(flat)).save(tmp_path / "flat.png")
    mean, std = channel_stats([str(tmp_path / "flat.png")], pipeline(PLAIN, (16, 12)), None)
    assert np.allclose(mean, [10 / 255, 128 / 255, 250 / 255], atol=1e-6)
    assert np.allclose(std, 0, atol=1e-5)


def test_photos_of_different_sizes_weigh_by_their_pixels(tmp_path: Path) -> None:
    """A prepare step that keeps sizes (no resize effect here: prepared photos are handed in)
    counts each pixel once, not each photo once."""
    small = np.full((2, 2, 3), 255, np.uint8)  # 4 white pixels
    large = np.zeros((4, 4, 3), np.uint8)  # 16 black ones
    prepared = [small, large]
    mean, std = channel_stats(["a", "b"], pipeline(PLAIN), None, lambda i: prepared[i])
    assert np.allclose(mean, 4 / 20, atol=1e-6)  # photo-weighted would say 0.5
    assert np.allclose(std, np.sqrt(0.2 * 0.8), atol=1e-6)


def test_a_replaced_photo_computes_the_statistics_afresh(tmp_path: Path) -> None:
    """The cache key has each photo's size and modification time, as the photo cache's: a
    photo replaced under the same name never gets the statistics of the one it replaced."""
    rng = np.random.default_rng(1)
    paths = [str(tmp_path / f"{k}.png") for k in range(4)]
    for path in paths:
        cv2.imwrite(path, rng.integers(0, 256, (*PHOTO, 3), dtype=np.uint8))
    cache = tmp_path / "cache"
    before = channel_stats(paths, pipeline(PLAIN), cache)
    replaced = Path(paths[0]).stat()
    cv2.imwrite(paths[0], np.full((*PHOTO, 3), (250, 5, 128), np.uint8))  # other pixels
    os.utime(paths[0], ns=(replaced.st_atime_ns, replaced.st_mtime_ns + 10**9))
    after = channel_stats(paths, pipeline(PLAIN), cache)
    fresh = channel_stats(paths, pipeline(PLAIN), None)
    assert after == fresh
    assert not np.allclose(after[0], before[0], atol=1e-3), (after, before)
    assert not np.allclose(after[1], before[1], atol=1e-3), (after, before)
    assert len(list(cache.glob("stats-*.json"))) == 2
