"""A run directory read back: summary, per-epoch metrics, config and group choices.

The readers here serve the error analysis, the ledger and the notebook. Except for
``epoch_history`` (which ``train()`` needs to fail loudly), each tolerates a run that crashed
midway: a missing or unreadable file gives an empty result, never an error.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf

from mask_age_gender.config import CONF, app_choices
from mask_age_gender.files import METRICS, SUMMARY
from mask_age_gender.labels import DEFAULT_AGE_BINS, check_age_bins

log = logging.getLogger(__name__)

HYDRA_CONFIG = Path(".hydra") / "config.yaml"
HYDRA_RUNTIME = Path(".hydra") / "hydra.yaml"
HPARAMS = "hparams.yaml"  # written by the CSV logger at the start of fit: the resolved config
RESOLVER_CALL = re.compile(r"\$\{([\w.]+):")  # ${name:args}; a plain ${a.b} is a reference


def epoch_history(metrics_csv: Path) -> pd.DataFrame:
    """Per-epoch metrics from the CSV logger's file (train and val rows merged by epoch)."""
    if not metrics_csv.is_file():
        raise FileNotFoundError(f"{metrics_csv} missing: keep the csv logger in logger=…")
    rows = pd.read_csv(metrics_csv)
    return rows.drop(columns=["step"], errors="ignore").groupby("epoch").first()


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """``epoch_history`` of a run, or None when it logged no epoch (or no metrics.csv)."""
    try:
        history = epoch_history(run_dir / METRICS)
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError, KeyError):
        return None
    return history if len(history) else None


def read_summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` of a run; empty for a run that did not finish."""
    try:
        return json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's composed config: ``.hydra/config.yaml``, else the logger's ``hparams.yaml``.

    Hydra saves the config unresolved; references are resolved here with ``paths.output_dir``
    pinned to this run and ``paths.root_dir`` to the directory it started in, so that values
    read as in the process that trained. Resolver calls, and anything that cannot be resolved,
    stay as written.
    """
    try:
        if (run_dir / HYDRA_CONFIG).is_file():
            return resolved_hydra_config(run_dir)
        if (run_dir / HPARAMS).is_file():
            hparams = yaml.safe_load((run_dir / HPARAMS).read_text()) or {}
            return dict(hparams.get("config") or {})
    except (OSError, ValueError, yaml.YAMLError) as err:
        log.warning("%s: config unreadable (%s)", run_dir, err)
    return {}


def resolved_hydra_config(run_dir: Path) -> dict[str, Any]:
    raw = OmegaConf.to_container(OmegaConf.load(run_dir / HYDRA_CONFIG), resolve=False)
    runtime = hydra_runtime(run_dir)
    pinned = {"output_dir": str(run_dir), "root_dir": runtime.get("cwd")}
    paths = raw.get("paths") if isinstance(raw.get("paths"), dict) else {}
    for key, value in pinned.items():
        if key in paths and value:
            paths[key] = value
    config = OmegaConf.create(escape_resolvers(raw))
    try:
        return OmegaConf.to_container(config, resolve=True)
    except Exception:  # any resolver error: keep the config as written
        return raw


def escape_resolvers(node: Any) -> Any:
    """``${hydra:…}``, ``${mixed_precision:}`` … made literal: a resolver answers for the
    process that calls it, so outside the run's own process it would answer wrongly."""
    if isinstance(node, dict):
        return {key: escape_resolvers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [escape_resolvers(value) for value in node]
    if isinstance(node, str):
        return RESOLVER_CALL.sub(r"\\${\1:", node)
    return node


def hydra_runtime(run_dir: Path) -> dict[str, Any]:
    """``hydra.runtime`` of ``.hydra/hydra.yaml`` (cwd, choices, …); empty when absent."""
    try:
        runtime = yaml.safe_load((run_dir / HYDRA_RUNTIME).read_text())["hydra"]["runtime"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    return runtime if isinstance(runtime, dict) else {}


def group_choices(run_dir: Path, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The option chosen in each config group: from Hydra's runtime, else from the summary.

    A run trained in-process (tests, notebooks) has no ``.hydra/``; its summary holds the
    choices among other values, told apart by the group folders of ``conf/``.
    """
    choices = hydra_runtime(run_dir).get("choices")
    if not choices:
        summary = read_summary(run_dir) if summary is None else summary
        groups = {folder.name for folder in CONF.iterdir() if folder.is_dir()}
        choices = {key: value for key, value in summary.items() if key in groups}
    return app_choices(choices)


def run_age_bins(run_dir: Path) -> tuple[int, int]:
    """The age thresholds a run was trained with (``data.age_bins``), else the default ones."""
    bins = (run_config(run_dir).get("data") or {}).get("age_bins")
    return check_age_bins(bins) if bins else DEFAULT_AGE_BINS


def find_runs(folders: Iterable[str | Path]) -> list[Path]:
    """Every run directory under the folders (a folder may be a run itself), in path order.

    A run directory holds ``summary.json`` (finished), ``metrics.csv`` (trained an epoch) or
    ``.hydra/config.yaml`` (started by the Hydra app).
    """
    found: set[Path] = set()
    for folder in map(Path, folders):
        if not folder.is_dir():
            log.warning("%s is not a folder: skipped", folder)
            continue
        for marker in (SUMMARY, METRICS, str(HYDRA_CONFIG)):
            found |= {path.parents[len(Path(marker).parts) - 1] for path in folder.rglob(marker)}
    return sorted(found)
