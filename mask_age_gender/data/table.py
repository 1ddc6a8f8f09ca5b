"""One way to read a checked table (the archive's csv files, the face boxes, the label overrides):
a csv as text, its columns checked, and its bad rows named "FILE row N: …" and raised at once
through the caller's own error. Rows count as a person reads them: row 1 is under the header."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

Error = Callable[[list[str]], Exception]  # the caller's error, made from its problems
YES_NO = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}  # lowered


class RowProblems:
    """The problems of a table's rows, "FILE row N: …" (or "row N: …" without ``name``, where
    the error names the file), raised at once by :meth:`raise_any`."""

    def __init__(self, error: Error, name: str = ""):
        self.error, self.name = error, name
        self.found: list[tuple[int, str]] = []
        self.rows: set[int] = set()  # the rows with a problem

    def where(self, row: int) -> str:
        return f"{self.name} row {row}".lstrip()

    def add(self, row: int, problem: str) -> None:
        self.found.append((row, f"{self.where(row)}: {problem}"))
        self.rows.add(row)

    def raise_any(self, *more: str) -> None:
        """Raise the problems in row order (a row's as found), then ``more``, if there are any."""
        if self.found or more:
            raise self.error([p for _, p in sorted(self.found, key=lambda f: f[0])] + list(more))


def read_checked_csv(
    path: Path, columns: Sequence[str], error: Error, name: str = "", hint: str = ""
) -> tuple[pd.DataFrame, RowProblems]:
    """The csv as text ("" for an empty cell) indexed by row number, and a :class:`RowProblems`
    for it. Refuses through ``error`` a file missing (``hint``: what to do; default: the path
    expected), empty or not a readable csv, and missing ``columns``."""
    label = name or "file"
    if not path.is_file():
        raise error([f"{label} not found ({hint or f'expected {path}'})"])
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as err:
        raise error([f"{label} is empty (not even a header row)"]) from err
    except (OSError, ValueError) as err:  # unreadable, not text, rows that do not parse
        raise error([f"{label} is not a readable csv: {str(err).strip()}"]) from err
    missing = [c for c in columns if c not in table.columns]
    if missing:
        has = ",".join(table.columns) or "none"
        problem = f"missing column(s) {', '.join(missing)} (has {has}; needs {','.join(columns)})"
        raise error([f"{name}: {problem}" if name else problem])
    table.index = pd.RangeIndex(1, len(table) + 1)
    return table, RowProblems(error, name)
