"""The archive reader on a generated archive with every quirk, and on each kind of bad input."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mask_age_gender.data.archive import ArchiveError, read_archive, read_eval, read_train
from mask_age_gender.data.photos import load_rgb
from mask_age_gender.labels import PHOTO_MASK

from .conftest import EVAL_PEOPLE, PEOPLE


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_reader_survives_every_quirk(archive: Path) -> None:
    table = read_train(archive)
    people = pd.read_csv(archive / "train" / "train.csv", dtype=str)
    assert len(table) == 7 * PEOPLE
    assert table["person"].nunique() == PEOPLE
    assert (table.groupby("person")["photo"].apply(set) == set(PHOTO_MASK)).all()
    assert not table["path"].str.contains("/._").any()
    extensions = {Path(p).suffix for p in table["path"]}
    assert {".jpg", ".jpeg", ".png"} <= extensions
    # one id, two people: the person is the folder, not the id
    shared = people["id"][people["id"].duplicated()]
    assert len(shared) >= 1
    assert table[table["id"] == shared.iloc[0]]["person"].nunique() == 2
    assert table["id"].str.contains("-").any()  # suffixed ids like 001498-1 stay text
    assert table["id"].str.match(r"^\d{6}").all()  # leading zeros kept


def test_labels_follow_the_photo_names(archive: Path) -> None:
    table = read_train(archive)
    assert (table.loc[table["photo"] == "normal", "mask"] == 2).all()
    assert (table.loc[table["photo"] == "incorrect_mask", "mask"] == 1).all()
    assert (table.loc[table["photo"].str.startswith("mask"), "mask"] == 0).all()
    expected = table["mask"] * 6 + table["gender"] * 3 + table["age_group"]
    assert (table["label"] == expected).all()
    old = read_train(archive, age_bins=[30, 58])
    moved = table["age"].between(58, 59)
    assert (old.loc[moved, "age_group"] == 2).all()


def test_eval_rows_keep_info_csv_order(archive: Path) -> None:
    table = read_eval(archive)
    info = pd.read_csv(archive / "eval" / "info.csv", dtype=str)
    assert table["image_id"].tolist() == info["ImageID"].tolist()
    assert len(table) == 7 * EVAL_PEOPLE
    assert all(Path(p).is_file() for p in table["path"])


def test_no_eval_folder_means_no_eval_table(archive_copy: Path) -> None:
    shutil.rmtree(archive_copy / "eval")
    assert read_eval(archive_copy) is None


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_photos_decode_to_rgb_whatever_their_mode(tmp_path: Path, mode: str) -> None:
    rgb = Image.fromarray(np.full((8, 6, 3), 120, dtype=np.uint8))
    if mode == "I;16":  # 16-bit grey, as some scanners write
        image = Image.fromarray(np.full((8, 6), 1200, dtype=np.uint16))
    else:
        image = rgb.convert(mode)
    path = tmp_path / ("photo.jpg" if mode in ("L", "CMYK") else "photo.png")
    image.save(path)
    array = load_rgb(str(path))
    assert array.shape == (8, 6, 3) and array.dtype == np.uint8
    with Image.open(path) as saved:  # the pixels PIL gives, whichever library decoded
        assert np.abs(array.astype(int) - np.asarray(saved.convert("RGB"))).max() <= 1


# Each bad input: (how to break a copy of the archive, the message expected).
def _csv(root: Path) -> Path:
    return root / "train" / "train.csv"


def _edit_csv(column: str, value: str, row: int = 3) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        table = pd.read_csv(_csv(root), dtype=str)
        table.loc[row - 1, column] = value
        table.to_csv(_csv(root), index=False)

    return edit


def _first_folder(root: Path) -> Path:
    return root / "train" / "images" / pd.read_csv(_csv(root), dtype=str)["path"][0]


def _photo(root: Path, stem: str) -> Path:
    return next(p for p in _first_folder(root).iterdir() if p.stem == stem)


def _drop_column(root: Path) -> None:
    pd.read_csv(_csv(root), dtype=str).drop(columns="age").to_csv(_csv(root), index=False)


def _empty(root: Path) -> None:
    _csv(root).write_text("id,gender,race,age,path\n")


def _second_file(root: Path) -> None:
    shutil.copy(_photo(root, "mask1"), _first_folder(root) / "mask1.png")


def _junk_photo(root: Path) -> None:
    _photo(root, "mask2").write_bytes(b"this is not an image")


def _eval_missing(root: Path) -> None:
    next((root / "eval" / "images").glob("*.jpg")).unlink()


def _eval_no_column(root: Path) -> None:
    (root / "eval" / "info.csv").write_text("Image,ans\nx.jpg,0\n")


BAD_INPUTS = {
    "no train.csv": (lambda r: _csv(r).unlink(), "train/train.csv not found"),
    "missing column": (_drop_column, "train/train.csv: missing column(s) age"),
    "bad gender": (_edit_csv("gender", "m"), "train/train.csv row 3: gender 'm' is not male or"),
    "age not int": (_edit_csv("age", "sixty"), "row 3: age 'sixty' is not an integer in 0..120"),
    "age too high": (_edit_csv("age", "130"), "row 3: age '130' is not an integer in 0..120"),
    "folder missing": (_edit_csv("path", "999999_x"), "row 3: folder train/images/999999_x not"),
    "outside": (_edit_csv("path", "../../../x"), "row 3: path '../../../x' points outside"),
    "photo missing": (lambda r: _photo(r, "normal").unlink(), "photo 'normal' missing"),
    "two files": (_second_file, "two files for photo 'mask1': mask1.jpg, mask1.png"),
    "undecodable": (_junk_photo, "mask2.jpg: cannot be decoded"),
    "empty": (_empty, "train/train.csv has no rows: the archive is empty"),
    "eval image missing": (_eval_missing, "eval/info.csv row"),
    "eval column": (_eval_no_column, "eval/info.csv: missing column(s) ImageID"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_refused_by_name_and_writes_nothing(archive_copy: Path, case: str) -> None:
    breaks, message = BAD_INPUTS[case]
    breaks(archive_copy)
    before = snapshot(archive_copy)
    with pytest.raises(ArchiveError) as caught:
        read_archive(archive_copy)
    assert message in str(caught.value)
    assert snapshot(archive_copy) == before


def test_all_problems_are_reported_at_once(archive_copy: Path) -> None:
    _edit_csv("gender", "unknown", row=2)(archive_copy)
    _edit_csv("age", "-4", row=5)(archive_copy)
    _photo(archive_copy, "incorrect_mask").unlink()
    _junk_photo(archive_copy)
    _eval_missing(archive_copy)
    with pytest.raises(ArchiveError) as caught:
        read_archive(archive_copy)
    assert len(caught.value.problems) == 5
    text = str(caught.value)
    assert "5 problems" in text and "row 2: gender" in text and "row 5: age '-4'" in text
    assert "mask2.jpg: cannot be decoded" in text and "eval/info.csv row" in text


def test_truncated_photo_passes_the_header_check_but_not_a_full_decode(archive_copy: Path) -> None:
    photo = _photo(archive_copy, "mask3")
    photo.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    assert len(read_train(archive_copy, verify_images=True)) == 7 * PEOPLE
    with pytest.raises(ArchiveError, match="mask3.*cannot be decoded"):
        read_train(archive_copy, verify_images="full")


def test_a_link_out_of_the_archive_is_refused(archive_copy: Path, tmp_path: Path) -> None:
    outside = shutil.copytree(_first_folder(archive_copy), tmp_path / "elsewhere")
    folder = _first_folder(archive_copy)
    shutil.rmtree(folder)
    os.symlink(outside, folder)
    with pytest.raises(ArchiveError, match="points outside the archive"):
        read_train(archive_copy)
