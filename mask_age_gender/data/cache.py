"""Photos decoded and prepared once (``data.cache``), so later epochs skip the JPEG decoding.

What is stored is the deterministic front of the pipeline (decode, ``prepare`` steps, resize to
``data.image_size``) as uint8: exactly what the augmentation would receive, so a cached run
trains on the same pixels as an uncached one.

- ``memory``: one array for the whole split in anonymous shared memory, allocated before the
  DataLoader workers fork, so all workers fill and read the same copy (Linux ``fork``). Its
  size is known up front and refused above ``data.cache_max_gb``.
- ``disk``: one ``.npy`` per photo under ``data.cache_dir``, named by a hash of the photo's
  path, size and modification time and of the prepare settings: a changed photo or setting
  gets a new file, never stale pixels. It lasts across runs (a sweep decodes once).
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

from mask_age_gender.files import write_bytes_atomic

log = logging.getLogger(__name__)
CACHE_MODES = ("none", "memory", "disk")
GB = 1e9


class CacheTooLarge(MemoryError):
    """``data.cache=memory`` would need more than ``data.cache_max_gb``."""


class PhotoCache:
    """``cache(index)``: photo ``index`` prepared (H×W×3 uint8), from the cache when there."""

    def __init__(
        self,
        mode: str,
        paths: Sequence[str],
        load: Callable[[str], np.ndarray],
        image_size: Sequence[int],
        key: str,
        cache_dir: str | Path | None = None,
        max_gb: float = 8.0,
    ):
        if mode not in CACHE_MODES:
            raise ValueError(f"data.cache must be one of {', '.join(CACHE_MODES)}, got {mode!r}")
        self.mode, self.paths, self.load, self.key = mode, list(paths), load, key
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
        image = self.load(self.paths[index])
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"prepared photo is {image.shape} {image.dtype}, not {self.shape}")
        return image

    def _from_memory(self, index: int) -> np.ndarray:
        if not self.filled[index]:
            self.pixels[index] = self._prepared(index)
            self.filled[index] = True
        return self.pixels[index].copy()

    def _from_disk(self, index: int) -> np.ndarray:
        path = self.paths[index]
        file = self.directory / f"{self._file_key(path)}.npy"
        try:
            return np.load(file)
        except (FileNotFoundError, ValueError, EOFError, OSError):
            image = self._prepared(index)
            buffer = io.BytesIO()
            np.save(buffer, image)
            write_bytes_atomic(file, buffer.getvalue())
            return image

    def _file_key(self, path: str) -> str:
        stat = os.stat(path)
        text = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self.key}"
        return hashlib.sha1(text.encode()).hexdigest()

    def summary(self) -> dict[str, float]:
        """How much memory the cache holds (0 for none and disk)."""
        return {"cache_gb": round(self.nbytes / GB, 4) if self.mode == "memory" else 0.0}
