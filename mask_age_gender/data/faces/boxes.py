"""The face boxes file: one row per photo, its face box in the photo's own pixels.

    path,x1,y1,x2,y2,score,found
    train/images/000001_female_Asian_45/mask1.jpg,118.4,142.0,266.0,331.2,93,true
    eval/images/cbc5c6e168e63498590db46022617123f1fe1268.jpg,,,,,12,false

``path`` is relative to the archive root, as ``train.csv`` and ``info.csv`` lead to it; the box
runs from (x1, y1) to (x2, y2), x2 and y2 exclusive as in a slice. Where ``found`` is false the
box columns are empty (a file from elsewhere may write 0s there: they are ignored) and
``score`` is the best rejected detection's, or empty. Any CSV with these columns is accepted
(boxes that competitors shared from RetinaFace or MTCNN, say): ``read_face_boxes`` checks it
like the archive, every problem at once, each naming its row. Further columns are kept as they
are: the detector writes ``size, mtime_ns, detector`` to know which rows a later run may reuse.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mask_age_gender.data.archive import ArchiveError, read_archive
from mask_age_gender.data.table import YES_NO, RowProblems, read_checked_csv
from mask_age_gender.files import write_csv_atomic

COLUMNS = ("path", "x1", "y1", "x2", "y2", "score", "found")
BOX = ("x1", "y1", "x2", "y2")
BOXES_FILE = "face_boxes.csv"
TRUE_BOXES_FILE = "face_boxes_true.csv"  # where a synthetic archive drew its faces, at its root
EVAL_KIND = "eval"  # the photo kind of eval photos (train photos: mask1 … normal)
HINT = "write one with: python -m mask_age_gender.faces data.root=ARCHIVE out=FILE"


class FaceBoxesError(ArchiveError):
    """Every problem of a face boxes file, one per line, each naming its row; reported like the
    archive's (a :class:`~mask_age_gender.errors.UserMistake` and a ``ValueError``)."""

    def __init__(self, csv_path: str | Path, problems: list[str]):
        super().__init__(Path(csv_path), problems, what="face boxes file")


def default_boxes_path(cache_dir: str | Path) -> Path:
    """Where the detector writes by default: ``face_boxes.csv`` in ``data.cache_dir`` (inside
    the archive unless moved, so the file belongs to the archive it describes)."""
    return Path(cache_dir) / BOXES_FILE


def relative_path(path: str | Path, root: str | Path) -> str:
    """A photo's path as the boxes file writes it: relative to ``root``, with ``/``.

    ``path`` is as the archive table holds it (``root`` joined with the photo's place, so
    absolute or not as ``root`` was given) or already relative to ``root``.
    """
    path, root = Path(path), Path(root)
    if path.is_absolute() or path.is_relative_to(root):
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    return path.as_posix()  # already relative to the root


def archive_photos(root: str | Path, verify_images: bool | str = False) -> pd.DataFrame:
    """Every photo of the archive, train then eval in ``info.csv`` order: ``path`` (relative to
    ``root``), ``file`` (as the archive table holds it) and ``kind`` (mask1 … normal, or eval).

    The archive reader lists them, so its quirks (AppleDouble files, mixed extensions) are
    handled once; ``verify_images`` as the reader's (default: headers not checked).
    """
    train, eval_ = read_archive(root, verify_images=verify_images)
    parts = [pd.DataFrame({"file": train["path"], "kind": train["photo"]})]
    if eval_ is not None:
        parts.append(pd.DataFrame({"file": eval_["path"], "kind": EVAL_KIND}))
    photos = pd.concat(parts, ignore_index=True)
    photos.insert(0, "path", [relative_path(p, root) for p in photos["file"]])
    return photos


def read_face_boxes(
    csv_path: str | Path, root: str | Path, photos: Iterable[str | Path] | None = None
) -> pd.DataFrame:
    """The boxes of ``csv_path`` checked against the archive at ``root``: ``path`` (relative),
    ``x1, y1, x2, y2`` and ``score`` as floats (NaN where ``found`` is false), ``found`` bool.

    ``photos`` (paths as the archive table holds them, or relative to ``root``): the photos a
    row may name; None reads them from the archive. Photos without a row are not a problem
    here (a file may cover train only): :func:`boxes_of` marks them. Raises
    :class:`FaceBoxesError` listing every problem: missing columns, values that are not
    numbers, empty boxes (x2 <= x1), boxes outside the photo, repeated or unknown paths,
    photos missing from disk.
    """
    csv_path, root = Path(csv_path), Path(root)
    error = partial(FaceBoxesError, csv_path)
    raw, problems = read_checked_csv(csv_path, COLUMNS, error, hint=HINT)
    table = _parse(raw, problems)
    _check_paths(table, root, photos, problems)
    _check_inside(table, root, problems)
    problems.raise_any()
    return table[list(COLUMNS)].reset_index(drop=True)


def write_face_boxes(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` (the columns of :data:`COLUMNS` first, further columns after them) whole
    or not at all; a table with missing columns or impossible boxes is refused and nothing is
    written. ``found`` is written ``true``/``false``, the box of a face not found empty."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise FaceBoxesError(path, [f"table to write: missing column(s) {', '.join(missing)}"])
    values = table[list(COLUMNS)].astype(object)
    as_text = values.where(values.notna(), "").astype(str)  # as the file will read
    problems = RowProblems(partial(FaceBoxesError, path))
    parsed = _parse(as_text, problems)
    problems.raise_any()
    out = pd.concat([parsed, table.drop(columns=list(COLUMNS))], axis=1)
    out["found"] = np.where(parsed["found"], "true", "false")
    return write_csv_atomic(path, out)


def boxes_of(boxes: pd.DataFrame, paths: Iterable[str | Path], root: str | Path) -> pd.DataFrame:
    """The rows of ``boxes`` for ``paths`` (as the archive table holds them), in their order:
    ``x1, y1, x2, y2, score, found`` and ``listed`` (whether the file has a row for the photo;
    a photo without one counts as found false)."""
    relative = [relative_path(p, root) for p in paths]
    aligned = boxes.set_index("path").reindex(relative)
    aligned["listed"] = aligned["found"].notna()
    aligned["found"] = aligned["found"].fillna(False).astype(bool)
    return aligned.reset_index(drop=True)[[*COLUMNS[1:], "listed"]]


def box_rows(aligned: pd.DataFrame) -> np.ndarray:
    """N × 4 rows ``x1, y1, x2, y2`` of a :func:`boxes_of` table, NaN where no face was found
    (or the photo is not listed)."""
    rows = aligned[list(BOX)].to_numpy(np.float64, copy=True)
    rows[~aligned["found"].to_numpy(bool)] = np.nan
    return rows


# --- checks: each adds its problems to ``problems``, which raises them in file order


def _parse(raw: pd.DataFrame, problems: RowProblems) -> pd.DataFrame:
    """Typed columns from text ones; to ``problems`` each row's: found not a yes/no, a value
    that is not a number, a box of a found face that is missing or empty, a repeated path."""
    rows = np.arange(1, len(raw) + 1)  # as the table reader counts them: data rows from 1
    found = raw["found"].str.strip().str.lower().map(YES_NO)
    for row, value in zip(rows[found.isna()], raw["found"][found.isna()], strict=True):
        problems.add(row, f"found '{value}' is not true or false")
    found = found.fillna(False).astype(bool).to_numpy()
    table = pd.DataFrame({"path": raw["path"].str.strip()})
    for column in (*BOX, "score"):
        text = raw[column].str.strip()
        number = pd.to_numeric(text, errors="coerce")
        needed = found if column in BOX else np.zeros(len(raw), dtype=bool)
        bad = (text != "") & ~np.isfinite(number) & (needed | (column == "score"))
        bad |= needed & (text == "")
        for row, value in zip(rows[bad], text[bad], strict=True):
            what = f"'{value}' is not a number" if value else "is empty for a found face"
            problems.add(row, f"{column} {what}")
        table[column] = number.where(found) if column in BOX else number
    table["found"] = found
    for first, second in (("x1", "x2"), ("y1", "y2")):
        empty = found & (table[second] <= table[first]).to_numpy()
        for row, a, b in zip(rows[empty], table[first][empty], table[second][empty], strict=True):
            problems.add(row, f"empty box ({second} {b:g} <= {first} {a:g})")
    _repeated_paths(table["path"], rows, problems)
    return table


def _repeated_paths(paths: pd.Series, rows: np.ndarray, problems: RowProblems) -> None:
    first_row = dict(zip(paths[~paths.duplicated()], rows[~paths.duplicated()], strict=True))
    for row, path in zip(rows[paths.duplicated()], paths[paths.duplicated()], strict=True):
        problems.add(row, f"'{path}' already listed in row {first_row[path]}")


def _check_paths(
    table: pd.DataFrame, root: Path, photos: Iterable[str | Path] | None, problems: RowProblems
) -> None:
    """Problems of paths: empty, absolute or leaving the archive, not on disk, on disk but not
    a photo of the archive (``train.csv``/``info.csv`` do not lead to it)."""
    if photos is None:
        known = set(archive_photos(root)["path"])
    else:
        known = {relative_path(p, root) for p in photos}
    for row, path in enumerate(table["path"], start=1):
        if not path:
            problems.add(row, "path is empty")
        elif Path(path).is_absolute() or ".." in Path(path).parts:
            problems.add(row, f"path '{path}' is not relative to the archive root {root}")
        elif not (root / path).is_file():
            problems.add(row, f"path '{path}' not found (expected {root / path})")
        elif path not in known:
            lists = "train/train.csv or eval/info.csv lists"
            problems.add(row, f"path '{path}' is not a photo that {lists}")


def _check_inside(table: pd.DataFrame, root: Path, problems: RowProblems) -> None:
    """Boxes that leave their photo (size from the photo's header), for the rows with no other
    problem: 0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height."""
    skip = set(problems.rows)
    for row, line in enumerate(table.itertuples(index=False), start=1):
        if row in skip or not line.found:
            continue
        try:
            with Image.open(root / line.path) as image:  # the header only: no decode
                width, height = image.size
        except Exception as err:  # PIL raises many types for a bad file; name the photo
            problems.add(row, f"photo {line.path} cannot be opened ({err})")
            continue
        if line.x1 < 0 or line.y1 < 0 or line.x2 > width or line.y2 > height:
            box = f"({line.x1:g}, {line.y1:g}, {line.x2:g}, {line.y2:g})"
            problems.add(row, f"box {box} leaves the {width}×{height} photo {line.path}")
