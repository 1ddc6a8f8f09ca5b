"""Repeated runs summarised as one row per configuration (``report --group [--baseline K=V]``).

Runs whose configs differ only in ``seed`` and/or ``data.fold`` (``REPEAT_KEYS``, and any key
that equals one of them in every run, such as ``data.seed: ${seed}``) are one configuration.
Its row gives ``n`` (runs with a val F1), ``failed`` (runs without one: failed, interrupted,
incomplete, running, unreadable; listed, never averaged) and, for val macro F1, the per-task
F1s, the class-activation maps' face share (``val_cam_face_share``) and the people measures
(``people_ari``, ``val_f1_people``, ``people_gain``: ``people_gain.py``), the mean, standard
deviation and a 95 % t-interval over the n runs
(mean ± t₀.₉₇₅,ₙ₋₁·std/√n, scipy's ``ttest_1samp(...).confidence_interval``; none for n = 1).

Against a baseline configuration, every other one gets the PAIRED difference in val F1: its runs
matched with the baseline's on seed and fold, the t-interval of the per-pair differences
(as scipy's ``ttest_rel(...).confidence_interval``),
``n_pairs`` (runs without a partner are left out) and ``excludes_0``; where the runs mapped
their photos, the same for the face share (``delta_cam_face_share_mean|ci_low|ci_high``).
Pairing over seeds and folds measures what a repeat would change (training noise, and with folds
which people validate); see the README's Results section.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mask_age_gender.results.ledger import MISSING, SCORES

REPEAT_KEYS = ("seed", "data.fold")
METRICS = (
    *("val_f1", "val_f1_mask", "val_f1_gender", "val_f1_age", "val_cam_face_share"),
    *("people_ari", "val_f1_people", "people_gain"),  # people_gain: paired within each run
)
STATS = ("mean", "std", "ci_low", "ci_high")
DELTAS = ("n_pairs", "delta_mean", "delta_ci_low", "delta_ci_high", "excludes_0")
SHARE = "val_cam_face_share"  # paired too, where the runs mapped their photos (attention.py)
SHARE_DELTAS = tuple(f"delta_cam_face_share_{name}" for name in ("mean", "ci_low", "ci_high"))
CONFIDENCE = 0.95


class BaselineError(ValueError):
    """A ``--baseline`` that names no configuration, or more than one."""


def config_keys(ledger: pd.DataFrame) -> list[str]:
    """The ledger's config columns: those between ``status`` and the first score."""
    columns = list(ledger.columns)
    return columns[columns.index("status") + 1 : columns.index(SCORES[0])]


def repeat_keys(ledger: pd.DataFrame) -> list[str]:
    """``seed``/``data.fold`` where the ledger has them, and the keys that follow them."""
    present = [key for key in REPEAT_KEYS if key in ledger]
    follows = [
        key
        for key in config_keys(ledger)
        if key not in present
        and any(same_values(ledger[key], ledger[repeat]) for repeat in present)
    ]
    return present + follows


def same_values(a: pd.Series, b: pd.Series) -> bool:
    return bool((a.astype("string") == b.astype("string")).fillna(False).all())


def t_interval(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, sample std and the 95 % t-interval of the mean; NaN where n is too small."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        mean = float(values[0]) if len(values) else np.nan
        return {"mean": mean, "std": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    with warnings.catch_warnings():  # repeats that scored alike rightly get a zero-width
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)  # interval, unwarned
        low, high = stats.ttest_1samp(values, popmean=0.0).confidence_interval(CONFIDENCE)
    return {"mean": values.mean(), "std": values.std(ddof=1), "ci_low": low, "ci_high": high}


def group_runs(ledger: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per configuration of the ledger's runs (see the module's docstring).

    Columns: the config keys that vary between the configurations, ``n``, ``failed``, then
    ``<metric>_mean|std|ci_low|ci_high`` for each of ``METRICS``; with a baseline, ``baseline``
    and ``DELTAS``; last ``runs`` (the run names, ``;``-separated).
    """
    repeats = repeat_keys(ledger)
    keys = [key for key in config_keys(ledger) if key not in repeats]
    configs = ledger[keys].astype("string").fillna("-")
    scored = ledger["val_f1"].notna() & (ledger["status"] == "finished")
    joined = configs.agg("\x1f".join, axis=1) if keys else ""  # no keys: one configuration
    ledger = ledger.assign(_config=joined, _scored=scored)
    rows = []
    for _, runs in ledger.groupby("_config", sort=False):
        done = runs[runs["_scored"]]
        row: dict[str, Any] = {key: runs[key].iloc[0] for key in keys}
        row |= {"n": len(done), "failed": len(runs) - len(done)}
        for metric in METRICS:
            summary = t_interval(done[metric].astype(float).dropna())
            row |= {f"{metric}_{name}": value for name, value in summary.items()}
        rows.append(row | {"runs": ";".join(runs["run"]), "_index": list(runs.index)})
    table = pd.DataFrame(rows)
    shown = [key for key in keys if table[key].astype("string").nunique(dropna=False) > 1]
    if not shown:  # one configuration: say which by its main choices
        shown = [key for key in keys if "." not in key]
    table = table.drop(columns=[key for key in keys if key not in shown])
    if baseline is not None:
        table = with_deltas(table, ledger, pick_baseline(table, ledger, keys, baseline))
    return (
        table.drop(columns="_index")
        .sort_values("val_f1_mean", ascending=False, na_position="last", kind="stable")
        .reset_index(drop=True)
    )


def parse_baseline(text: str) -> dict[str, str]:
    """``"loss=ce,optimizer.lr=0.01"`` as ``{"loss": "ce", "optimizer.lr": "0.01"}``."""
    pairs = [part.partition("=") for part in text.split(",") if part.strip()]
    if not pairs or any(not sep or not key.strip() for key, sep, _ in pairs):
        raise BaselineError(f"--baseline {text!r}: expected KEY=VALUE[,KEY=VALUE]")
    return {key.strip(): value.strip() for key, _, value in pairs}


def same_value(stored: Any, wanted: str) -> bool:
    """A config value against the text of a command line: as numbers where both are."""
    if pd.isna(stored):
        return wanted.lower() in ("null", "none", "-")
    try:
        return float(stored) == float(wanted)
    except (TypeError, ValueError):
        return str(stored) == wanted or str(stored).lower() == wanted.lower() == "true"


def shown(value: Any) -> str:
    return MISSING if pd.isna(value) else str(value)


def pick_baseline(table: pd.DataFrame, ledger: pd.DataFrame, keys: list[str], text: str) -> int:
    """The row of ``table`` that the ``--baseline`` text names; ``BaselineError`` otherwise."""
    wanted = parse_baseline(text)
    unknown = [key for key in wanted if key not in keys]
    if unknown:
        raise BaselineError(
            f"--baseline {text}: no config key {', '.join(map(repr, unknown))} to choose by"
            f" (seed and data.fold are repeats, not configurations); keys: {', '.join(keys)}"
        )
    values = {idx: ledger.loc[table.at[idx, "_index"][0], keys] for idx in table.index}
    matched = [
        idx
        for idx, config in values.items()
        if all(same_value(config[key], value) for key, value in wanted.items())
    ]
    if len(matched) == 1:
        return matched[0]
    if not matched:
        seen = {key: sorted({shown(v[key]) for v in values.values()}) for key in wanted}
        taken = "; ".join(f"{key} takes {', '.join(vals)}" for key, vals in seen.items())
        raise BaselineError(f"--baseline {text} matches no configuration ({taken})")
    named = [table.at[idx, "runs"].split(";")[0] for idx in matched]
    raise BaselineError(
        f"--baseline {text} matches {len(matched)} configurations (runs {', '.join(named)}, …);"
        " add KEY=VALUE pairs to pick one"
    )


def with_deltas(table: pd.DataFrame, ledger: pd.DataFrame, base: int) -> pd.DataFrame:
    """``DELTAS`` of each configuration against row ``base``, paired on seed and fold; and
    ``SHARE_DELTAS``, the same for the face share, where any run has one."""
    metrics = ["val_f1"]
    if SHARE in ledger and ledger[SHARE].notna().any():
        metrics.append(SHARE)
    base_runs = ledger.loc[table.at[base, "_index"]]
    references = {metric: paired_scores(base_runs, metric) for metric in metrics}
    rows = []
    for idx in table.index:
        if idx == base:
            rows.append({"n_pairs": pd.NA})
            continue
        runs = ledger.loc[table.at[idx, "_index"]]
        pairs, mean, low, high = paired_delta(runs, references["val_f1"], "val_f1")
        row = {"n_pairs": pairs, "delta_mean": mean, "delta_ci_low": low, "delta_ci_high": high}
        row["excludes_0"] = pd.NA if np.isnan(low) else low > 0 or high < 0
        if SHARE in references:
            share = paired_delta(runs, references[SHARE], SHARE)[1:]
            row |= dict(zip(SHARE_DELTAS, share, strict=True))
        rows.append(row)
    columns = [*DELTAS, *(SHARE_DELTAS if SHARE in references else ())]
    deltas = pd.DataFrame(rows, index=table.index, columns=columns)
    deltas["n_pairs"] = deltas["n_pairs"].astype("Int64")
    deltas["excludes_0"] = deltas["excludes_0"].astype("boolean")
    flag = pd.Series(table.index == base, index=table.index, name="baseline")
    return pd.concat([table.drop(columns="runs"), flag, deltas, table[["runs"]]], axis=1)


def paired_delta(
    runs: pd.DataFrame, reference: pd.Series, metric: str
) -> tuple[int, float, float, float]:
    """Pairs, mean difference and its 95 % t-interval of ``metric``, ``runs`` minus the
    baseline's ``reference`` (its :func:`paired_scores`), matched on seed and fold (runs
    without a partner or a value left out)."""
    pairs = paired_scores(runs, metric).to_frame("other")
    pairs = pairs.join(reference.rename("base"), how="inner").dropna()
    delta = t_interval(pairs["other"] - pairs["base"])  # what scipy's ttest_rel gives
    return len(pairs), delta["mean"], delta["ci_low"], delta["ci_high"]


def paired_scores(runs: pd.DataFrame, metric: str = "val_f1") -> pd.Series:
    """The finished runs' ``metric`` indexed by (seed, fold, repeat): the key runs pair on.

    A key the ledger lacks is the same in every run; runs that share seed and fold are paired
    in the order they were found.
    """
    done = runs[runs["_scored"]]
    keys = pd.DataFrame(
        {key: done[key].astype("string") if key in done else "" for key in REPEAT_KEYS},
        index=done.index,
    )
    keys["repeat"] = keys.groupby(list(REPEAT_KEYS)).cumcount()
    return pd.Series(done[metric].astype(float).to_numpy(), index=pd.MultiIndex.from_frame(keys))


def formatted_groups(table: pd.DataFrame) -> pd.DataFrame:
    """The groups for reading: val F1 to 4 decimals, each task's F1 as ``mean ± half-width``
    of its interval, ``-`` for none, without the run names."""
    shown = table.drop(columns=["runs"]).copy()
    at = shown.columns.get_loc("val_f1_ci_high") + 1
    for offset, metric in enumerate(METRICS[1:]):
        columns = [f"{metric}_{name}" for name in STATS]
        pairs = zip(table[columns[0]], table[columns[3]], strict=True)
        shown = shown.drop(columns=columns)
        shown.insert(at + offset, metric, [plus_minus(mean, high) for mean, high in pairs])
    for column in shown:
        if column.startswith(("val_f1_", "delta_")) and shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda v: MISSING if pd.isna(v) else f"{v:.4f}")
        else:
            shown[column] = shown[column].astype("string").fillna(MISSING)
    return shown


def plus_minus(mean: float, high: float) -> str:
    if pd.isna(mean):
        return MISSING
    return f"{mean:.4f}" if pd.isna(high) else f"{mean:.4f} ± {high - mean:.4f}"
