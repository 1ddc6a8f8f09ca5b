"""The checked-table reader the archive, the face boxes and the label overrides share."""

from __future__ import annotations

from pathlib import Path

import pytest

from mask_age_gender.data.table import RowProblems, read_checked_csv


class TableError(ValueError):
    """A caller's own error: made from the problems, keeping them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def refused(path: Path, columns: tuple[str, ...] = ("id", "age"), **kwargs: str) -> list[str]:
    with pytest.raises(TableError) as caught:
        read_checked_csv(path, columns, TableError, **kwargs)
    return caught.value.problems


def test_a_missing_column_is_named_with_the_columns_the_file_has(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id,gender\n1,male\n")
    expected = "missing column(s) age, path (has id,gender; needs id,age,path)"
    assert refused(path, ("id", "age", "path"), name="people.csv") == [f"people.csv: {expected}"]
    assert refused(path, ("id", "age", "path")) == [expected]  # the error names the file


def test_a_missing_unreadable_or_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    assert refused(path, name="people.csv") == [f"people.csv not found (expected {path})"]
    assert refused(path, hint="write one first") == ["file not found (write one first)"]
    path.write_bytes(b"\xff\xfeid,age\n")
    assert refused(path, name="people.csv") == [
        "people.csv is not a readable csv: "
        "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    ]
    path.write_bytes(b"")
    assert refused(path, name="people.csv") == ["people.csv is empty (not even a header row)"]
    path.write_text("id,age\n")  # a header alone is a table without rows, not a mistake
    table, problems = read_checked_csv(path, ("id", "age"), TableError)
    assert table.empty and list(table.columns) == ["id", "age"]
    problems.raise_any()  # nothing found: nothing raised


def test_bad_rows_are_raised_at_once_in_row_order(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id,age\n1,5\n2,x\n3,\n4,7\n")
    table, problems = read_checked_csv(path, ("id", "age"), TableError, name="people.csv")
    assert list(table.index) == [1, 2, 3, 4] and table.loc[3, "age"] == ""  # "" is not NaN
    for row, age in reversed(list(table["age"].items())):  # found last row first
        if not age.isdigit():
            problems.add(row, f"age '{age}' is not a number")
    assert problems.rows == {2, 3} and problems.where(4) == "people.csv row 4"
    with pytest.raises(TableError) as caught:
        problems.raise_any("photos/2.jpg: cannot be decoded")
    assert caught.value.problems == [
        "people.csv row 2: age 'x' is not a number",
        "people.csv row 3: age '' is not a number",
        "photos/2.jpg: cannot be decoded",
    ]


def test_without_a_name_rows_are_named_alone() -> None:
    problems = RowProblems(TableError)
    problems.add(2, "path is empty")
    problems.add(1, "found 'maybe' is not true or false")
    problems.add(2, "x1 'abc' is not a number")
    with pytest.raises(TableError) as caught:
        problems.raise_any()
    assert caught.value.problems == [
        "row 1: found 'maybe' is not true or false",
        "row 2: path is empty",
        "row 2: x1 'abc' is not a number",
    ]
