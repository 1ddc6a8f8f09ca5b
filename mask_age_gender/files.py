"""A run directory's file names, and writing files whole or not at all (a temp file beside the
target, then a rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mask_age_gender.labels import NUM_CLASSES

SUMMARY = "summary.json"  # scores, status and choices of a run
METRICS = "metrics.csv"  # one row per logged step/epoch (the CSV logger's)
PREDICTIONS = "val_predictions.csv"  # photo, person, true, predicted, 18 probabilities
PROBABILITIES = [f"p{k:02d}" for k in range(NUM_CLASSES)]  # its 18 probability columns
SUBMISSION = "submission.csv"  # ImageID,ans for eval/info.csv, when the archive has eval/
GROUPS = "groups.csv"  # ImageID,group beside a submission: predict people.group=true
REPORT = "report.md"  # the error analysis, for reading
ERRORS = "errors.json"  # the error analysis, for programs
ATTENTION = "attention.csv"  # per validation photo: its Grad-CAM map's share on the face
BEST_CKPT = Path("checkpoints") / "best.ckpt"  # the best epoch by val/f1
LAST_CKPT = Path("checkpoints") / "last.ckpt"  # the latest state: resume=RUN_DIR starts here


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv_atomic(path: str | Path, table: pd.DataFrame) -> Path:
    return write_text_atomic(path, table.to_csv(index=False))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
