"""The synthetic archive generator alone: layout, quirks, images, determinism, balance, CLI."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mask_age_gender.data.archive import read_archive
from mask_age_gender.data.synthetic import APPLEDOUBLE, generate_archive
from mask_age_gender.data.synthetic.plan import plan_archive
from mask_age_gender.labels import PHOTO_MASK, age_group, decode

SIZE = (48, 64)  # width, height: small and not the real 384x512
PEOPLE, EVAL_PEOPLE = 20, 4


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _header(path: Path) -> str:
    return path.read_text().splitlines()[0]


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("._"))


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quirky") / "archive"
    return generate_archive(out, people=PEOPLE, eval_people=EVAL_PEOPLE, seed=0, size=SIZE)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "archive"
    return generate_archive(out, PEOPLE, EVAL_PEOPLE, seed=0, size=SIZE, quirks=False)


def test_train_csv_has_the_real_columns_and_paths(archive: Path) -> None:
    csv_path = archive / "train" / "train.csv"
    assert _header(csv_path) == "id,gender,race,age,path"
    rows = _rows(csv_path)
    assert len(rows) == PEOPLE
    for row in rows:
        assert re.fullmatch(r"\d{6}(-\d+)?", row["id"]), row
        assert row["gender"] in ("male", "female")
        assert row["race"] == "Asian"
        assert 18 <= int(row["age"]) <= 75
        assert row["path"] == f"{row['id']}_{row['gender']}_{row['race']}_{row['age']}"
        assert (archive / "train" / "images" / row["path"]).is_dir()
    assert any(row["id"].startswith("0") for row in rows)  # leading zeros kept as text


def test_every_profile_folder_holds_the_seven_photos(archive: Path) -> None:
    for row in _rows(archive / "train" / "train.csv"):
        photos = _photos(archive / "train" / "images" / row["path"])
        assert sorted(p.stem for p in photos) == sorted(PHOTO_MASK)


def test_quirks_are_present_when_on(archive: Path) -> None:
    images = archive / "train" / "images"
    junk = list(archive.rglob("._*"))
    assert any(p.parent == images and p.is_file() for p in junk)  # ._<profile> beside folders
    assert any(p.parent.parent == images for p in junk)  # ._mask1.jpg inside a folder
    assert any(p.parent == archive / "eval" / "images" for p in junk)
    assert all(p.read_bytes().startswith(b"\x00\x05\x16\x07") for p in junk)
    assert all(p.read_bytes() == APPLEDOUBLE for p in junk)
    suffixes = {p.suffix for p in images.glob("*/*") if not p.name.startswith("._")}
    assert suffixes == {".jpg", ".jpeg", ".png"}
    rows = _rows(archive / "train" / "train.csv")
    assert sum("-" in row["id"] for row in rows) == 2
    ids = [row["id"] for row in rows]
    shared = [i for i in set(ids) if ids.count(i) > 1]
    assert len(shared) == 1
    assert len({row["path"] for row in rows if row["id"] == shared[0]}) == 2


def test_quirks_are_absent_when_off(plain: Path) -> None:
    assert not list(plain.rglob("._*"))
    assert {p.suffix for p in (plain / "train" / "images").glob("*/*")} == {".jpg"}
    ids = [row["id"] for row in _rows(plain / "train" / "train.csv")]
    assert all(re.fullmatch(r"\d{6}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_photo_decodes_at_the_requested_size(archive: Path) -> None:
    photos = [p for p in archive.rglob("*") if p.suffix in (".jpg", ".jpeg", ".png")]
    photos = [p for p in photos if not p.name.startswith("._")]
    assert len(photos) == 7 * (PEOPLE + EVAL_PEOPLE)
    for path in photos:
        with Image.open(path) as img:
            assert img.size == SIZE
            assert img.mode == "RGB"
            assert img.format == {".png": "PNG"}.get(path.suffix, "JPEG")


def test_same_seed_gives_the_same_bytes(archive: Path, tmp_path: Path) -> None:
    again = generate_archive(tmp_path / "again", PEOPLE, EVAL_PEOPLE, seed=0, size=SIZE)
    assert _tree_digest(again) == _tree_digest(archive)


def test_other_seed_gives_another_archive(archive: Path, tmp_path: Path) -> None:
    other = generate_archive(tmp_path / "other", PEOPLE, EVAL_PEOPLE, seed=1, size=SIZE)
    train_csv = "train/train.csv"
    assert (other / train_csv).read_bytes() != (archive / train_csv).read_bytes()
    first = next(iter(sorted((other / "eval" / "images").glob("[!.]*"))))
    assert not (archive / "eval" / "images" / first.name).exists()


def test_photos_of_one_person_differ_from_each_other(archive: Path) -> None:
    row = _rows(archive / "train" / "train.csv")[0]
    photos = _photos(archive / "train" / "images" / row["path"])
    digests = {hashlib.sha1(p.read_bytes()).hexdigest() for p in photos}
    assert len(digests) == 7


def test_eval_split_and_truth(archive: Path) -> None:
    info = _rows(archive / "eval" / "info.csv")
    assert _header(archive / "eval" / "info.csv") == "ImageID,ans"
    assert len(info) == 7 * EVAL_PEOPLE
    assert all(row["ans"] == "0" for row in info)
    assert all(re.fullmatch(r"[0-9a-f]{40}\.jpg", row["ImageID"]) for row in info)
    assert all((archive / "eval" / "images" / row["ImageID"]).is_file() for row in info)
    assert not (archive / "eval" / "eval_truth.csv").exists()
    truth = _rows(archive / "eval_truth.csv")
    assert [row["ImageID"] for row in truth] == [row["ImageID"] for row in info]
    labels = [int(row["ans"]) for row in truth]
    assert all(0 <= y < 18 for y in labels)
    masks = [int(decode(y)[0]) for y in labels]
    assert masks.count(0) == 5 * EVAL_PEOPLE  # mask1..mask5 are worn
    assert masks.count(1) == masks.count(2) == EVAL_PEOPLE
    people = [row["person"] for row in truth]
    assert sorted(people.count(p) for p in set(people)) == [7] * EVAL_PEOPLE  # whole people


def test_eval_people_are_not_train_people() -> None:
    plan = plan_archive(PEOPLE, EVAL_PEOPLE, seed=0, quirks=True)
    assert not {p.index for p in plan.train} & {p.index for p in plan.eval}


def test_labels_are_balanced_like_the_real_set() -> None:
    people = plan_archive(400, 0, seed=0, quirks=False).train
    female = sum(p.gender == "female" for p in people) / len(people)
    groups = [int(age_group(p.age)) for p in people]
    shares = [groups.count(g) / len(people) for g in range(3)]
    assert 0.54 <= female <= 0.68
    assert 0.40 <= shares[0] <= 0.54
    assert 0.38 <= shares[1] <= 0.52
    assert 0.04 <= shares[2] <= 0.12
    assert min(p.age for p in people) >= 18 and max(p.age for p in people) <= 75


def test_any_size_draws(tmp_path: Path) -> None:
    out = generate_archive(tmp_path / "square", people=2, eval_people=1, size=(50, 50))
    for path in (out / "eval" / "images").glob("[!.]*"):
        with Image.open(path) as img:
            assert img.size == (50, 50)


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_archive(tmp_path, people=1, eval_people=0, size=SIZE)


@pytest.mark.slow
def test_cli_writes_an_archive(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "mask_age_gender.data.synthetic", "--out", str(out)]
    cmd += ["--people", "5", "--eval-people", "2", "--seed", "3", "--size", "48", "64"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert str(out) in done.stdout and "35 photos" in done.stdout
    assert len(_rows(out / "train" / "train.csv")) == 5
    assert len(_rows(out / "eval" / "info.csv")) == 14


def test_no_eval_people_means_no_eval_folder_and_the_archive_reads(tmp_path: Path) -> None:
    out = generate_archive(tmp_path / "train_only", people=3, eval_people=0, size=SIZE)
    assert not (out / "eval").exists()  # eval/ is optional; an empty info.csv is refused
    table, eval_table = read_archive(out, (30, 60), False)
    assert len(table) == 21 and eval_table is None
