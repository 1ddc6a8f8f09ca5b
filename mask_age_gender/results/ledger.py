"""The experiment ledger: one row per run found under the given folders, like the old log
(the command is ``python -m mask_age_gender.report``).

A row holds the run's name (its path under DIR), its status, its config (the main group
choices and learning rate, plus every config value that differs between the runs), train and
val loss/accuracy/macro F1, per-task F1, best epoch, the error taxonomy counts of
``analysis``, wall time and the best checkpoint. ``--diff`` keeps only the config keys that
vary. The ledger is printed and written as ``ledger.md`` and ``ledger.csv`` (with each run's
directory). Single runs and multirun sweeps are found alike. The status is the one
``summary.json`` gives (finished, running, failed, interrupted), ``incomplete`` for a run that
stopped before writing one, ``unreadable`` for one whose files cannot be read; unfinished runs
show the scores of the best epoch they logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mask_age_gender.config import flatten_config
from mask_age_gender.files import ERRORS, PREDICTIONS
from mask_age_gender.results.error_analysis import CATEGORIES, analyse
from mask_age_gender.results.run_reader import (
    find_runs,
    group_choices,
    read_history,
    read_summary,
    run_age_bins,
    run_config,
)

MISSING = "-"  # how a missing value shows in a Markdown table

log = logging.getLogger(__name__)

MAIN_CHOICES = ("model", "head", "loss", "optimizer", "scheduler", "transform", "experiment")
MAIN_VALUES = ("optimizer.lr",)
SCORES = (
    *("train_loss", "train_acc", "train_f1", "val_loss", "val_acc", "val_f1"),
    *("val_f1_ci_low", "val_f1_ci_high"),  # 95 % over validation people (bootstrap.py)
    *("val_f1_mask", "val_f1_gender", "val_f1_age", "best_epoch", "epochs_run"),
    "val_cam_face_share",  # the class-activation maps' mass on the face (results/attention.py)
    # what agreeing within people gives (results/people_gain.py)
    *("people_ari", "val_f1_people", "val_f1_true", "people_gain"),
)
COUNTS = ("mistakes", *CATEGORIES, "multi_attribute")
ROW_COLUMNS = ["run", "status", *SCORES, *COUNTS, "seconds", "best_ckpt", "note"]
# config keys that differ between runs by construction, or name this machine's cache folder
VOLATILE = ("paths.", "hydra.", "data.cache_dir")


def collect_ledger(folders: Iterable[str | Path], diff: bool = False) -> pd.DataFrame:
    """One row per run under the folders: run, status, config columns, scores, counts, files.

    Config columns: the main choices and values plus whatever varies; with ``diff`` only
    what varies. Rows are in path order; see ``sort_ledger``.
    """
    folders = [Path(folder).resolve() for folder in folders]
    runs = find_runs(folders)
    read = [read_run(run_dir, run_name(run_dir, folders)) for run_dir in runs]
    table = pd.DataFrame([row for row, _ in read], columns=ROW_COLUMNS)
    table["run_dir"] = [str(run_dir) for run_dir in runs]
    for column in ("best_epoch", "epochs_run", *COUNTS):
        table[column] = table[column].astype("Int64")
    configs = pd.DataFrame([config for _, config in read], index=table.index)
    keys = config_columns(configs, diff)
    return pd.concat([table[["run", "status"]], configs[keys], table.iloc[:, 2:]], axis=1)


def run_name(run_dir: Path, folders: Sequence[Path]) -> str:
    """The run's path under the first folder holding it (the folder's name if it is the run)."""
    for folder in folders:
        if run_dir == folder:
            return folder.name
        if run_dir.is_relative_to(folder):
            return str(run_dir.relative_to(folder))
    return str(run_dir)


def read_run(run_dir: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ledger row and the flat config of one run; never raises (the reason goes in note)."""
    try:
        return read_run_files(run_dir, name)
    except Exception as err:  # a ledger of many runs must not stop at one broken folder
        log.warning("%s: unreadable (%s)", run_dir, err)
        return {"run": name, "status": "unreadable", "note": f"{type(err).__name__}: {err}"}, {}


def read_run_files(run_dir: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = read_summary(run_dir)
    status = summary.get("status") or ("finished" if "val_f1" in summary else "incomplete")
    row: dict[str, Any] = {"run": name, "status": status}
    if "val_f1" in summary:
        row |= {key: summary.get(key) for key in (*SCORES, "seconds", "best_ckpt")}
    else:  # running, failed, interrupted, or killed before it could say
        row |= scores_from_history(run_dir) | {"note": summary.get("reason")}
    row |= taxonomy_counts(run_dir)
    config = group_choices(run_dir, summary) | flat_config(run_config(run_dir), run_dir)
    return row, config


def scores_from_history(run_dir: Path) -> dict[str, Any]:
    """Scores of an unfinished run at its best logged epoch (by val macro F1), if any."""
    history = read_history(run_dir)
    if history is None:
        return {}
    val_f1 = history.get("val/f1")
    has_val = val_f1 is not None and val_f1.notna().any()
    best = val_f1.idxmax() if has_val else history.index.max()
    at_best = history.loc[best]
    logged = [key for key in SCORES if key.startswith(("train_", "val_"))]
    scores = {key: at_best.get(key.replace("_", "/", 1)) for key in logged}
    return scores | {"best_epoch": int(best), "epochs_run": len(history)}


def taxonomy_counts(run_dir: Path) -> dict[str, int]:
    """Mistake counts by category: from ``errors.json``, else from the predictions, else none."""
    if (run_dir / ERRORS).is_file():
        taxonomy = json.loads((run_dir / ERRORS).read_text())["taxonomy"]
    elif (run_dir / PREDICTIONS).is_file():
        predictions = pd.read_csv(run_dir / PREDICTIONS)
        taxonomy = analyse(predictions, run_age_bins(run_dir)).taxonomy
    else:
        return {}
    counts = {name: entry["count"] for name, entry in taxonomy["categories"].items()}
    multi = taxonomy["multi_attribute"]["count"]
    return {"mistakes": taxonomy["mistakes"], **counts, "multi_attribute": multi}


def flat_config(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The config as ``{"optimizer.lr": 0.001, …}``, without the keys naming the run's own paths."""
    flat = flatten_config(config)
    own = str(run_dir.resolve())
    return {
        key: json.dumps(value) if isinstance(value, list | dict) else value
        for key, value in flat.items()
        if not key.startswith(VOLATILE) and not (isinstance(value, str) and own in value)
    }


def config_columns(configs: pd.DataFrame, diff: bool) -> list[str]:
    """The config keys to show: the main ones and the varying ones, or only the varying ones.

    A value of a group (``model.name``) that only follows the group's varying choice
    (``model``) adds nothing and is left out.
    """
    varying = [key for key in configs if configs[key].astype("string").nunique() > 1]
    varying = [key for key in varying if not follows_choice(configs, key, varying)]
    main = [key for key in (*MAIN_CHOICES, *MAIN_VALUES) if key in configs]
    keys = [key for key in main if key in varying] if diff else main
    return keys + sorted(key for key in varying if key not in keys)


def follows_choice(configs: pd.DataFrame, key: str, varying: list[str]) -> bool:
    group = key.split(".")[0]
    if "." not in key or group not in varying:
        return False
    values = configs[[group, key]].astype("string")
    return bool(values.groupby(group, dropna=False)[key].nunique().max() <= 1)


def sort_ledger(ledger: pd.DataFrame, column: str, descending: bool = False) -> pd.DataFrame:
    """The ledger sorted by any of its columns; runs without a value go last."""
    if column not in ledger:
        raise KeyError(f"no column {column!r} in the ledger; columns: {', '.join(ledger)}")
    return ledger.sort_values(
        column, ascending=not descending, na_position="last", kind="stable"
    ).reset_index(drop=True)


def formatted(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger for reading: scores to 4 decimals, seconds whole, no run_dir, '-' for none."""
    shown = ledger.drop(columns=["run_dir"]).copy()
    if shown["note"].isna().all():
        shown = shown.drop(columns=["note"])
    for column in shown:
        if column == "seconds":
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.0f}")
        elif column in SCORES and shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
        else:
            shown[column] = shown[column].astype("string").fillna("-")
    return shown


def best_run_dir(ledger: pd.DataFrame) -> Path:
    """The run with the best val macro F1 among those with validation predictions."""
    with_predictions = ledger[[(Path(d) / PREDICTIONS).is_file() for d in ledger["run_dir"]]]
    if with_predictions.empty:
        raise FileNotFoundError(f"none of the {len(ledger)} runs has {PREDICTIONS}")
    scores = with_predictions["val_f1"].astype(float).fillna(-np.inf)
    return Path(with_predictions.loc[scores.idxmax(), "run_dir"])
