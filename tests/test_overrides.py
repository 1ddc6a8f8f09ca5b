"""data.label_overrides: label corrections (the folds stay the archive's), refused when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mask_age_gender.data.archive import ArchiveError, read_train
from mask_age_gender.data.label_fixes import apply_overrides, read_overrides
from mask_age_gender.labels import Mask
from mask_age_gender.train import train


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def table(archive: Path) -> pd.DataFrame:
    return read_train(archive, verify_images=False)


def test_overrides_change_exactly_the_named_labels(table: pd.DataFrame, tmp_path: Path) -> None:
    people = sorted(table["person"].unique())
    a, b, c = (table[table["person"] == p].iloc[0] for p in people[:3])
    other = "male" if a["gender"] == 1 else "female"
    age = 61 if b["age"] < 60 else 25
    csv = write(
        tmp_path / "fix.csv",
        "person,gender,age,swap_mask,reason\n"
        f"{a['person']},{other},,,looks {other}\n{b['person']},,{age},,\n{c['person']},,,true,\n",
    )
    fixed, changed = apply_overrides(table, read_overrides(csv, people), (30, 60))
    assert changed == {"people": 3, "gender": 1, "age": 1, "swap_mask": 1}
    diff = fixed[["gender", "age", "mask", "label"]] != table[["gender", "age", "mask", "label"]]
    touched = set(fixed.loc[diff.any(axis=1), "person"])
    assert touched == {a["person"], b["person"], c["person"]}
    rows = fixed["person"] == a["person"]
    assert (fixed.loc[rows, "gender"] != table.loc[rows, "gender"]).all()
    assert (fixed.loc[fixed["person"] == b["person"], "age"] == age).all()
    swapped = fixed[fixed["person"] == c["person"]].set_index("photo")["mask"]
    assert swapped["normal"] == Mask.INCORRECT and swapped["incorrect_mask"] == Mask.NOT_WEAR
    assert (swapped.drop(["normal", "incorrect_mask"]) == Mask.WEAR).all()


def test_bad_overrides_are_refused_naming_file_and_row(table: pd.DataFrame, tmp_path: Path) -> None:
    person = table["person"].iloc[0]
    csv = write(
        tmp_path / "bad.csv",
        "person,gender,age,swap_mask\n"
        f"999999_nobody,male,,\n{person},m,,\n{person},,,\n{person},,200,maybe\n",
    )
    with pytest.raises(ArchiveError) as err:
        read_overrides(csv, table["person"].unique())
    message = str(err.value)
    assert "label overrides" in message and "5 problems" in message
    assert "bad.csv row 1: person '999999_nobody' is not in train/train.csv" in message
    assert "bad.csv row 2: gender 'm' is not male or female" in message
    assert "bad.csv row 3: changes nothing" in message
    assert "bad.csv row 4: age '200' is not an integer in 0..120" in message
    assert "bad.csv row 4: swap_mask 'maybe' is not true or false" in message
    with pytest.raises(ArchiveError, match="needs column person"):
        read_overrides(write(tmp_path / "cols.csv", "id,gender\n1,male\n"), [person])
    with pytest.raises(FileNotFoundError, match="label_overrides=.*missing.csv"):
        read_overrides(tmp_path / "missing.csv", [person])


@pytest.mark.slow
def test_a_run_applies_overrides_and_counts_them(
    train_config, table: pd.DataFrame, tmp_path: Path
) -> None:
    person = table["person"].iloc[0]
    gender = "male" if table["gender"].iloc[0] == 1 else "female"
    csv = write(tmp_path / "fix.csv", f"person,gender\n{person},{gender}\n")
    cfg = train_config(f"data.label_overrides={csv}", "trainer.max_epochs=1")
    train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert summary["label_overrides_people"] == 1 and summary["label_overrides_gender"] == 1
    assert summary["label_overrides_age"] == 0
