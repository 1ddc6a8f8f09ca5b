"""Which face boxes a run uses: one rule for training, validation, the run's own predictions,
``predict``, ensembles and the class-activation maps.

The boxes file is ``data.face_boxes`` when set (any CSV in ``boxes.py``'s format; it must
list every photo used). When null, it is ``face_boxes.csv`` in ``data.cache_dir``, the file
``python -m mask_age_gender.faces`` writes. Detecting into it is one-time work
(:func:`detect_missing`: ``FaceDataModule.prepare_data``, and ``predict`` before it loads the
photos), never a side effect of loading them; reading (:func:`face_boxes_table`) refuses a
missing file with what to do. A set of photos in which no face at all was found is refused
too: centre crops alone are not what a face-crop model learnt from.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mask_age_gender.data.faces.boxes import (
    box_rows,
    boxes_of,
    default_boxes_path,
    read_face_boxes,
    relative_path,
)
from mask_age_gender.data.faces.detect import detect_archive
from mask_age_gender.errors import UserMistake

log = logging.getLogger(__name__)
FACES_COMMAND = "python -m mask_age_gender.faces data.root={root}"


class FaceBoxesMissing(UserMistake, FileNotFoundError):
    """``transform=face_crop`` without a face box for the photos."""


def boxes_file(face_boxes: str | Path | None, cache_dir: str | Path | None) -> Path | None:
    """The boxes file of a run: ``face_boxes`` if given, else the detector's in ``cache_dir``
    (None when neither is known: a data module built by hand without a cache folder)."""
    if face_boxes is not None:
        return Path(face_boxes)
    return None if cache_dir is None else default_boxes_path(cache_dir)


def detect_missing(
    root: str | Path,
    face_boxes: str | Path | None,
    cache_dir: str | Path | None,
    photos: Sequence[str] | None = None,
) -> None:
    """Detect the faces into the run's default boxes file where it is missing or lacks one of
    ``photos`` (paths as the archive table holds them; None: the whole archive). A given
    ``face_boxes`` file is the user's: never written. Several processes may call it at once
    (DDP ranks, a sweep's jobs): ``detect_archive`` holds a lock on the file while it works
    and reuses the rows another process wrote, so one of them detects."""
    path = boxes_file(face_boxes, cache_dir)
    if face_boxes is not None or path is None:
        return
    if path.is_file():
        if photos is None or lists_all(path, photos, root):
            return
        log.info("face_crop: %s lacks some photos: detecting them", path)
    else:
        log.info("face_crop: no data.face_boxes and no %s: detecting the faces", path)
    detect_archive(root, path, verify_images=False)  # the caller has read the archive


def lists_all(path: Path, photos: Sequence[str], root: str | Path) -> bool:
    """Whether the boxes file has a row for every photo: its ``path`` column alone (the rows
    are checked once, where they are read); a file that cannot say is detected anew."""
    try:
        listed = set(pd.read_csv(path, usecols=["path"], dtype=str)["path"])
    except ValueError:  # pandas' parser errors and UnicodeDecodeError are ValueErrors
        return False
    return all(relative_path(photo, root) in listed for photo in photos)


def face_boxes_table(
    root: str | Path, face_boxes: str | Path | None, cache_dir: str | Path | None
) -> tuple[pd.DataFrame, Path]:
    """The run's checked boxes table and the file it came from; refuses a file that is not
    there (detect it with :func:`detect_missing` first, or the ``faces`` command)."""
    path = boxes_file(face_boxes, cache_dir)
    if path is None or not path.is_file():
        raise FaceBoxesMissing(
            f"transform=face_crop needs the face boxes of {root}, and there is no "
            f"{path or 'data.face_boxes'}: run `{FACES_COMMAND.format(root=root)}`, give "
            "data.face_boxes=FILE, or let the Trainer run the data module's prepare_data"
        )
    table = read_face_boxes(path, root)
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]  # which version this process read
    log.info("face_crop: boxes from %s (sha1 %s)", path, digest)
    return table, path


def boxes_for(
    paths: Sequence[str], table: pd.DataFrame, root: str | Path, source: str | Path, what: str
) -> np.ndarray:
    """Rows ``x1, y1, x2, y2`` of ``table`` for ``paths`` in their order, NaN where no face was
    found (what :class:`~mask_age_gender.data.dataset.FaceDataset` takes); logs how many of
    ``what`` (``train photos``, say) fall back to the centre crop.

    Refuses photos the table does not list (naming a few and how to detect them), and a set
    in which no photo has a face."""
    aligned = boxes_of(table, paths, root)
    missing = [p for p, listed in zip(paths, aligned["listed"], strict=True) if not listed]
    if missing:
        shown = ", ".join(str(Path(p).relative_to(Path(root))) for p in missing[:3])
        raise FaceBoxesMissing(
            f"{source} has no row for {len(missing)} of {len(paths)} {what} (e.g. {shown}): "
            f"detect them with `{FACES_COMMAND.format(root=root)}` and drop data.face_boxes, "
            "or give data.face_boxes=FILE with a row per photo"
        )
    found = aligned["found"].to_numpy(bool)
    if len(paths) and not found.any():
        raise FaceBoxesMissing(
            f"{source}: no face found in any of the {len(paths)} {what}; a face-crop model "
            "would see centre crops only: give data.face_boxes=FILE from another detector"
        )
    rows = box_rows(aligned)
    log.info("face_crop: %d of %d %s without a face: centre crop", (~found).sum(), len(paths), what)
    return rows
