"""Reader of the competition archive: one table row per photo, checked before training starts.

Hand-written because no library knows this layout. It survives the real archive's quirks
(AppleDouble ``._*`` files, mixed extensions, suffixed ids, one id shared by two folders) and
collects every problem it finds into one :class:`ArchiveError` naming the file and the row.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from mask_age_gender.data.table import RowProblems, read_checked_csv
from mask_age_gender.errors import UserMistake
from mask_age_gender.labels import DEFAULT_AGE_BINS, GENDER_NAMES, PHOTO_MASK, age_group, encode

log = logging.getLogger(__name__)

TRAIN_CSV = "train/train.csv"
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
EVAL_CSV = "eval/info.csv"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
MAX_LISTED = 30  # problems listed in one error; the rest are counted
MAX_AGE = 120


class ArchiveError(UserMistake, ValueError):
    """Every problem found in an archive, one per line, each naming its file and row."""

    def __init__(self, root: Path, problems: Sequence[str], what: str = "archive"):
        self.problems = list(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems[:MAX_LISTED])
        more = len(self.problems) - MAX_LISTED
        tail = f"\n  … and {more} more" if more > 0 else ""
        count = len(self.problems)
        super().__init__(f"{what} {root}: {count} problem{'s' * (count != 1)}\n{listed}{tail}")


def read_train(
    root: str | Path,
    age_bins: Sequence[int] = DEFAULT_AGE_BINS,
    verify_images: bool | str = True,
) -> pd.DataFrame:
    """One row per training photo: path, person, id, gender, race, age, photo, mask, age_group,
    label.

    ``person`` is the profile folder (the real archive has one id for two people).
    ``verify_images``: True checks each photo's header, ``"full"`` decodes it, False skips.
    Raises :class:`ArchiveError` listing every problem found.
    """
    root = Path(root)
    people, problems = _read_train_csv(root)
    rows: list[dict] = []
    folder_problems: list[str] = []
    for row, person in people.iterrows():
        found, of_folder = _photos_of(root, person["path"], problems.where(row))
        folder_problems += of_folder
        for stem, photo in found.items():
            rows.append(
                {
                    "path": str(photo),
                    "person": person["path"],
                    "id": person["id"],
                    "gender": person["gender"],
                    "race": person["race"],
                    "age": person["age"],
                    "photo": stem,
                }
            )
    table = pd.DataFrame(rows, columns=["path", "person", "id", "gender", "race", "age", "photo"])
    problems.raise_any(*folder_problems, *_verify_images(root, table["path"], verify_images))
    table["mask"] = table["photo"].map(PHOTO_MASK).astype(int)
    return relabel(table, age_bins)


def relabel(table: pd.DataFrame, age_bins: Sequence[int]) -> pd.DataFrame:
    """The table with age groups and 18-class labels (re)computed from mask, gender and age."""
    groups = age_group(table["age"].to_numpy(), age_bins)
    return table.assign(age_group=groups, label=encode(table["mask"], table["gender"], groups))


def read_eval(root: str | Path, verify_images: bool | str = True) -> pd.DataFrame | None:
    """The eval photos in ``eval/info.csv`` order (image_id, path); None without eval/."""
    root = Path(root)
    if not (root / "eval").is_dir():
        return None
    error = partial(ArchiveError, root)
    info, problems = read_checked_csv(root / EVAL_CSV, ("ImageID",), error, EVAL_CSV)
    if info.empty:
        raise error([f"{EVAL_CSV} has no rows"])
    paths = []
    for row, image_id in info["ImageID"].items():
        path = _inside(root, root / "eval" / "images" / image_id)
        if path is None:
            problems.add(row, f"ImageID '{image_id}' points outside the archive")
        elif not path.is_file():
            problems.add(row, f"image eval/images/{image_id} not found")
        paths.append(str(path))
    present = [p for p in paths if Path(p).is_file()]
    problems.raise_any(*_verify_images(root, present, verify_images))
    return pd.DataFrame({"image_id": info["ImageID"].to_numpy(), "path": paths})


def read_archive(
    root: str | Path,
    age_bins: Sequence[int] = DEFAULT_AGE_BINS,
    verify_images: bool | str = True,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(train table, eval table or None), with the problems of both sides in one error."""
    problems: list[str] = []
    train = eval_ = None
    try:
        train = read_train(root, age_bins, verify_images)
    except ArchiveError as err:
        problems += err.problems
    try:
        eval_ = read_eval(root, verify_images)
    except ArchiveError as err:
        problems += err.problems
    if problems:
        raise ArchiveError(Path(root), problems)
    return train, eval_


def _read_train_csv(root: Path) -> tuple[pd.DataFrame, RowProblems]:
    """People of train.csv with gender as 0/1 and age as int; rows with problems are dropped."""
    error = partial(ArchiveError, root)
    table, problems = read_checked_csv(root / TRAIN_CSV, TRAIN_COLUMNS, error, TRAIN_CSV)
    if table.empty:
        raise error([f"{TRAIN_CSV} has no rows: the archive is empty"])
    genders, ages = [], []
    seen_paths: dict[str, int] = {}
    for row, person in table.iterrows():
        gender = GENDER_NAMES.get(person["gender"].strip().lower())
        if gender is None:
            problems.add(row, f"gender '{person['gender']}' is not male or female")
        age = parse_age(person["age"])
        if age is None:
            problems.add(row, f"age '{person['age']}' is not an integer in 0..{MAX_AGE}")
        folder = person["path"]
        if not folder.strip():
            problems.add(row, "path is empty")
        elif folder in seen_paths:
            problems.add(row, f"folder '{folder}' already listed in row {seen_paths[folder]}")
        seen_paths.setdefault(folder, row)
        genders.append(gender)
        ages.append(age)
    table["gender"], table["age"] = genders, ages
    keep = ~table.index.isin(list(problems.rows))
    return table.loc[keep].astype({"gender": int, "age": int}), problems


def parse_age(text: str) -> int | None:
    try:
        age = int(text.strip())
    except ValueError:
        return None
    return age if 0 <= age <= MAX_AGE else None


def _photos_of(root: Path, folder: str, where: str) -> tuple[dict[str, Path], list[str]]:
    """The seven photos of one profile folder by stem, and what is wrong with the folder
    (``where``: the row of train.csv that names it)."""
    directory = _inside(root, root / "train" / "images" / folder)
    if directory is None:
        return {}, [f"{where}: path '{folder}' points outside the archive"]
    if not directory.is_dir():
        return {}, [f"{where}: folder train/images/{folder} not found"]
    by_stem: dict[str, list[str]] = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if name.startswith(".") or ext.lower() not in IMAGE_EXTENSIONS or stem not in PHOTO_MASK:
            continue  # AppleDouble `._*` files, .DS_Store, stray non-photos
        by_stem.setdefault(stem, []).append(name)
    problems = []
    for stem in PHOTO_MASK:
        names = by_stem.get(stem, [])
        if not names:
            problems.append(
                f"train/images/{folder}: photo '{stem}' missing "
                f"(expected {stem} with extension {', '.join(IMAGE_EXTENSIONS)})"
            )
        elif len(names) > 1:
            problems.append(
                f"train/images/{folder}: two files for photo '{stem}': {', '.join(names)}"
            )
    found = {stem: directory / names[0] for stem, names in by_stem.items() if len(names) == 1}
    return found, problems


def _inside(root: Path, path: Path) -> Path | None:
    """``path`` if it resolves inside the archive (links included), else None."""
    resolved = path.resolve()
    return path if resolved.is_relative_to(root.resolve()) else None


def _verify_images(root: Path, paths: Sequence[str], mode: bool | str) -> list[str]:
    """Problems with photos that cannot be opened: header pass, or full decode with 'full'."""
    if mode not in (True, False, "full"):
        raise ValueError(f"data.verify_images must be true, false or full, got {mode!r}")
    if not mode:
        return []
    problems = []
    desc = "decoding photos" if mode == "full" else "checking photo headers"
    started = time.monotonic()
    log.info("%s: %d photos", desc, len(paths))  # a bar only on a terminal (disable=None)
    for path in tqdm(paths, desc=desc, leave=False, mininterval=1.0, disable=None):
        try:  # not load_rgb: a header-only check, and PIL's load() refuses truncated JPEGs
            with Image.open(path) as image:
                if mode == "full":
                    image.load()
        except Exception as err:  # PIL raises many types for a bad file; each names the photo
            problems.append(f"{Path(path).relative_to(root)}: cannot be decoded ({err})")
    log.info(
        "%s: done in %.1f s, %d cannot be opened", desc, time.monotonic() - started, len(problems)
    )
    return problems
