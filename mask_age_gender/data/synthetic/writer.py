"""Writing the archive: ``train/`` with its csv, ``eval/`` with ``info.csv``, and beside them
the answers no real archive has: ``eval_truth.csv`` (label and person) and
``face_boxes_true.csv`` (where each face was drawn, in ``data.face_boxes``' format).

The files, names and quirks follow the real archive; the images come from ``drawing``, the
layout from ``plan``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mask_age_gender.data.archive import EVAL_CSV, TRAIN_COLUMNS, TRAIN_CSV
from mask_age_gender.data.faces.boxes import COLUMNS, TRUE_BOXES_FILE, write_face_boxes
from mask_age_gender.files import write_csv_atomic

from .drawing import Shot, photos_of
from .plan import RACE, Person, Plan, label_of, plan_archive

JPEG_QUALITY = 90
# What macOS leaves beside each file it zips: an AppleDouble header, never an image.
APPLEDOUBLE = (
    b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\x09\x00\x00\x00\x32"
    + b"\x00" * 60
    + b"ATTR\x00\x00\x00\x00com.apple.quarantine\x00"
    + b"0081;00000000;Archive Utility;"
    + b"\x00" * 160
)


def _save(img: Image.Image, path: Path) -> None:
    if path.suffix == ".png":
        img.save(path, format="PNG", compress_level=1)  # 3x faster than the default
    else:
        img.save(path, format="JPEG", quality=JPEG_QUALITY)


def _eval_image_id(seed: int, person: Person, photo: str) -> str:
    return hashlib.sha1(f"synthetic:{seed}:{person.index}:{photo}".encode()).hexdigest() + ".jpg"


def _true_box(path: str, shot: Shot) -> tuple:
    """The boxes-file row of a drawn photo: the face ellipse's bounding box (face units -1..1
    both ways), in the photo's pixels, clipped to it; found, with the top score."""
    w, h = shot.image.size
    (x1, y1), (x2, y2) = shot.face.box(-1, -1, 1, 1)
    x1, x2 = (round(float(np.clip(x, 0, w)), 2) for x in (x1, x2))
    y1, y2 = (round(float(np.clip(y, 0, h)), 2) for y in (y1, y2))
    return (path, x1, y1, x2, y2, 100.0, True)


def _write_train(out: Path, plan: Plan, seed: int, size: tuple[int, int]) -> list[tuple]:
    """The training photos and ``train.csv``; returns the photos' true face boxes."""
    images = out / "train" / "images"
    junk = set(plan.junk_folders)
    boxes = []
    for i, person in enumerate(plan.train):
        folder = images / person.path
        folder.mkdir(parents=True, exist_ok=True)
        for shot, ext in zip(photos_of(person, seed, size), plan.extensions[i], strict=True):
            _save(shot.image, folder / f"{shot.photo}{ext}")
            boxes.append(_true_box(f"train/images/{person.path}/{shot.photo}{ext}", shot))
            if i in junk:
                (folder / f"._{shot.photo}{ext}").write_bytes(APPLEDOUBLE)
        if i in junk:
            (images / f"._{person.path}").write_bytes(APPLEDOUBLE)
    rows = [(p.id, p.gender, RACE, p.age, p.path) for p in plan.train]
    rows.sort(key=lambda r: (r[0], r[4]))  # the real csv is in id order
    write_csv_atomic(out / TRAIN_CSV, pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)))
    return boxes


def _write_eval(
    out: Path, plan: Plan, seed: int, size: tuple[int, int], quirks: bool
) -> list[tuple]:
    """The eval photos, ``info.csv`` and ``eval_truth.csv`` (label and person of each, which
    measure a submission and its ``groups.csv``); returns the true face boxes. No
    eval people: no ``eval/`` (it is optional; an empty ``info.csv`` is refused as a mistake)."""
    if not plan.eval:
        return []
    images = out / "eval" / "images"
    images.mkdir(parents=True, exist_ok=True)
    truth, boxes = [], []
    for person in plan.eval:
        for shot in photos_of(person, seed, size):
            image_id = _eval_image_id(seed, person, shot.photo)
            _save(shot.image, images / image_id)
            truth.append((image_id, label_of(person, shot.photo), person.index))
            boxes.append(_true_box(f"eval/images/{image_id}", shot))
    truth = [truth[i] for i in plan.eval_order]
    boxes = [boxes[i] for i in plan.eval_order]
    if quirks and truth:
        (images / f"._{truth[0][0]}").write_bytes(APPLEDOUBLE)
    table = pd.DataFrame(truth, columns=["ImageID", "ans", "person"])
    write_csv_atomic(out / EVAL_CSV, table.assign(ans=0)[["ImageID", "ans"]])
    write_csv_atomic(out / "eval_truth.csv", table)
    return boxes


def generate_archive(
    out: Path,
    people: int = 200,
    eval_people: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (384, 512),
    quirks: bool = True,
) -> Path:
    """Write a synthetic archive into ``out`` (which must be empty or absent) and return ``out``.

    ``size`` is (width, height). The same arguments give the same bytes. With ``quirks`` the
    archive has the real one's AppleDouble files, mixed extensions, suffixed ids and one id
    shared by two folders; without, every file is a plain ``.jpg`` under a unique plain id.
    ``face_boxes_true.csv`` holds where each face was drawn (``data.face_boxes=`` takes it).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty; the synthetic archive needs a fresh folder")
    if people < 0 or eval_people < 0 or min(size) < 8:
        raise ValueError(f"need people, eval_people >= 0 and a size of at least 8x8, got {size}")
    size = (int(size[0]), int(size[1]))
    plan = plan_archive(people, eval_people, seed, quirks)
    boxes = _write_train(out, plan, seed, size)
    boxes += _write_eval(out, plan, seed, size, quirks)
    write_face_boxes(pd.DataFrame(boxes, columns=list(COLUMNS)), out / TRUE_BOXES_FILE)
    return out
