"""Photos decoded and prepared once (``data.cache``), so later epochs skip the JPEG decoding.

What is stored is the deterministic front of the pipeline (decode, ``prepare`` steps, resize to
``data.image_size``) as uint8: exactly what the augmentation would receive, so a cached run
trains on the same pixels as an uncached one.

- ``memory``: one array for the whole split in anonymous shared memory, allocated before the
  DataLoader workers fork, so all workers fill and read the same copy (Linux ``fork``). Its
  size is known up front and refused above the memory limit (below).
- ``disk``: one ``.npy`` per photo under ``data.cache_dir``, named by a hash of the photo's
  path, size and modification time, of the prepare settings and of what else the photo's
  pixels depend on (its face box, for a face crop): a changed photo, setting or box gets a
  new file, never stale pixels. It lasts across runs (a sweep decodes once), and is filled
  before training by ``FaceDataModule.prepare_data`` (:func:`fill_disk_cache`).
- ``auto`` (the default, :func:`choose_cache`): ``memory`` when every stage's photos fit the
  memory limit, ``disk`` otherwise, said in one log line.

The memory limit is ``data.cache_max_gb`` when set; when null (the default) it is
``data.cache_memory_fraction`` (0.5) of the memory available when the cache is chosen
(psutil's ``available``), shared by the processes of a DDP run on the machine. ``auto`` takes
the smaller of the two when both are there.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mmap
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil
from torch import Generator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mask_age_gender.files import write_bytes_atomic

log = logging.getLogger(__name__)
FILL_BATCH = 64  # photos a loader task when filling the disk cache
CACHE_MODES = ("none", "memory", "disk")
CACHE_CHOICES = (*CACHE_MODES, "auto")
GB = 1e9


class CacheTooLarge(MemoryError):
    """``data.cache=memory`` would need more than its memory limit."""


def available_memory_gb() -> float:
    """Memory this machine can give without swapping (psutil's ``available``), in GB."""
    return psutil.virtual_memory().available / GB


def check_cache_choice(requested: str) -> None:
    """Refuse a ``data.cache`` that is none of ``CACHE_CHOICES``."""
    if requested not in CACHE_CHOICES:
        raise ValueError(f"data.cache must be one of {', '.join(CACHE_CHOICES)}, got {requested!r}")


def choose_cache(
    requested: str,
    photos: int,
    image_size: Sequence[int],
    max_gb: float | None = None,
    fraction: float = 0.5,
    processes: int = 1,
) -> tuple[str, float]:
    """The cache mode to build (``auto`` made concrete) and the memory limit in GB that all
    stages' memory caches share, for ``photos`` photos prepared at ``image_size``.

    ``auto``: ``memory`` when they fit the limit, ``disk`` otherwise (one log line says which
    and why). ``memory`` without ``max_gb`` is refused here when they do not fit the budget.
    """
    check_cache_choice(requested)
    if requested in ("none", "disk") or (requested == "memory" and max_gb is not None):
        return requested, float("inf") if max_gb is None else float(max_gb)
    need = photos * int(np.prod((*image_size, 3))) / GB
    available = available_memory_gb()
    budget = available * fraction / max(processes, 1)
    why = f"{fraction:g} of {available:.1f} GB available" + (
        f", shared by {processes} processes" if processes > 1 else ""
    )
    limit = budget if max_gb is None else min(budget, float(max_gb))
    if requested == "memory":
        if need > limit:
            raise CacheTooLarge(
                f"data.cache=memory needs {need:.3g} GB for {photos} photos at "
                f"{image_size[0]}×{image_size[1]}, above its budget of {budget:.3g} GB ({why}, "
                "data.cache_memory_fraction): use data.cache=auto or disk, set "
                "data.cache_max_gb, or a smaller image_size"
            )
        return "memory", limit
    if need <= limit:
        log.info("data.cache=auto: memory (%.3g GB of photos, %.1f GB available)", need, available)
        return "memory", limit
    cap = f"data.cache_max_gb={max_gb:g}" if limit < budget else f"{budget:.3g} GB: {why}"
    log.info("data.cache=auto: disk (%.3g GB of photos, above the memory limit of %s)", need, cap)
    return "disk", limit


class PhotoCache:
    """``cache(index)``: photo ``index`` prepared (H×W×3 uint8) by ``load(index)``, from the
    cache when there. ``key`` names the prepare settings, ``tags[index]`` what else photo
    ``index``'s pixels depend on (its face box); both name its disk file."""

    def __init__(
        self,
        mode: str,
        paths: Sequence[str],
        load: Callable[[int], np.ndarray],
        image_size: Sequence[int],
        key: str,
        cache_dir: str | Path | None = None,
        max_gb: float = 8.0,
        tags: Sequence[str] | None = None,
    ):
        if mode not in CACHE_MODES:
            raise ValueError(f"data.cache must be one of {', '.join(CACHE_MODES)}, got {mode!r}")
        self.mode, self.paths, self.load, self.key = mode, list(paths), load, key
        self.tags = [""] * len(self.paths) if tags is None else list(tags)
        self.shape = (*image_size, 3)
        if mode == "memory":
            self.nbytes = len(self.paths) * int(np.prod(self.shape))
            if self.nbytes > max_gb * GB:
                raise CacheTooLarge(
                    f"data.cache=memory needs {self.nbytes / GB:.3g} GB for {len(self.paths)} "
                    f"photos at {image_size[0]}×{image_size[1]}, above data.cache_max_gb="
                    f"{max_gb}: raise the limit, use data.cache=disk, or a smaller image_size"
                )
            buffer = mmap.mmap(-1, max(self.nbytes, 1))  # MAP_SHARED: forked workers share it
            self.pixels = np.frombuffer(buffer, np.uint8, self.nbytes).reshape(-1, *self.shape)
            self.filled = np.frombuffer(mmap.mmap(-1, max(len(self.paths), 1)), np.bool_)
            log.info("photo cache: memory, %.3f GB for %d photos", self.nbytes / GB, len(paths))
        elif mode == "disk":
            if cache_dir is None:
                raise ValueError("data.cache=disk needs data.cache_dir")
            self.directory = Path(cache_dir) / f"photos-{key}"
            self.directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, index: int) -> np.ndarray:
        if self.mode == "memory":
            return self._from_memory(index)
        if self.mode == "disk":
            return self._from_disk(index)
        return self._prepared(index)

    def _prepared(self, index: int) -> np.ndarray:
        image = self.load(index)
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"prepared photo is {image.shape} {image.dtype}, not {self.shape}")
        return image

    def _from_memory(self, index: int) -> np.ndarray:
        if not self.filled[index]:
            self.pixels[index] = self._prepared(index)
            self.filled[index] = True
        return self.pixels[index].copy()

    def _from_disk(self, index: int) -> np.ndarray:
        file = self.directory / f"{self._file_key(index)}.npy"
        try:
            return np.load(file)
        except (FileNotFoundError, ValueError, EOFError, OSError):
            image = self._prepared(index)
            buffer = io.BytesIO()
            np.save(buffer, image)
            write_bytes_atomic(file, buffer.getvalue())
            return image

    def _file_key(self, index: int) -> str:
        path = self.paths[index]
        stat = os.stat(path)
        text = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self.key}"
        if self.tags[index]:  # only then: files cached before tags existed keep their names
            text += f"|{self.tags[index]}"
        return hashlib.sha1(text.encode()).hexdigest()

    def missing(self) -> list[int]:
        """The photos a disk cache has no file for yet (none for the other modes)."""
        if self.mode != "disk":
            return []
        files = (self.directory / f"{self._file_key(i)}.npy" for i in range(len(self.paths)))
        return [i for i, file in enumerate(files) if not file.is_file()]

    def fill(self, indices: Sequence[int]) -> int:
        """Prepare and cache the photos ``indices``; how many (a loader's ``collate_fn``)."""
        for index in indices:
            self(index)
        return len(indices)

    def summary(self) -> dict[str, float]:
        """How much memory the cache holds (0 for none and disk)."""
        return {"cache_gb": round(self.nbytes / GB, 4) if self.mode == "memory" else 0.0}


def fill_disk_cache(cache: PhotoCache, workers: int, what: str) -> None:
    """Write every photo a disk cache lacks, in ``workers`` loader processes, with a bar on a
    terminal: one-time work (``FaceDataModule.prepare_data``), so that training's first epoch
    and the other DDP processes only read. Each file is written whole (another process writing
    the same photo at once writes the same bytes)."""
    missing = cache.missing()
    if not missing:
        return
    log.info("photo cache: preparing %d %s photos into %s", len(missing), what, cache.directory)
    loader = DataLoader(  # its own generator: the global RNG, the model's, stays untouched
        missing, FILL_BATCH, num_workers=workers, collate_fn=cache.fill, generator=Generator()
    )
    with tqdm(total=len(missing), desc=f"disk cache ({what})", unit="photo", disable=None) as bar:
        for done in loader:
            bar.update(done)
