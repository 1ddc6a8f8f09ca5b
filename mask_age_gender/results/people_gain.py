"""What making a person's answers agree gains, measured where the people are known.

A training run's validation photos are whole people, as the eval set is; so every run groups
them as ``predict people.group=true`` would (``inference/people.py``) and scores each step
with the groups found and with the true people (the ceiling). ``summary.json`` keeps:

- ``people_ari``: adjusted Rand index of the groups found against the true people;
- ``people_exact``: the share of groups found that are one person's photos, all of them;
- ``val_f1_people_agree|_structure`` and ``val_f1_people`` (both steps), with groups found;
  ``val_f1_true_agree|_structure`` and ``val_f1_true``, with the true people;
- ``people_gain``: ``val_f1_people - val_f1``, a paired difference (same run, same people),
  which ``report --group`` averages over seeds with its t-interval;
- ``people_seconds``: the time grouping took.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import adjusted_rand_score

from mask_age_gender.inference.people import PeopleOptions, group, people_labels
from mask_age_gender.labels import class_name
from mask_age_gender.models.scores import score
from mask_age_gender.results.plots import message_figure, show_photo

STEPS = {"_agree": (True, False), "_structure": (False, True), "": (True, True)}
SOURCES = {"people": "found groups", "true": "true people"}


def people_scores(
    probs: np.ndarray,
    embedded: np.ndarray,
    truth: np.ndarray,
    persons: pd.Series,
    features: str = PeopleOptions.features,
) -> tuple[dict[str, Any], np.ndarray]:
    """(the summary keys above, each photo's group found) of the validation photos."""
    started = time.perf_counter()
    found = group([embedded], features)
    seconds = time.perf_counter() - started
    true = pd.factorize(pd.Series(persons))[0]
    labels = probs.argmax(axis=1)
    keys: dict[str, Any] = {
        "people_ari": round(float(adjusted_rand_score(true, found)), 6),
        "people_exact": round(exact_share(found, true), 6),
        "people_groups": int(found.max() + 1) if len(found) else 0,
    }
    for source, groups in (("people", found), ("true", true)):
        for step, (agree, structure) in STEPS.items():
            agreed = people_labels(probs, labels, groups, agree, structure)
            keys[f"val_f1_{source}{step}"] = round(score(agreed, truth)["f1"], 6)
    keys["people_gain"] = round(keys["val_f1_people"] - score(labels, truth)["f1"], 6)
    keys["people_seconds"] = round(seconds, 3)
    return keys, found


def exact_share(found: np.ndarray, true: np.ndarray) -> float:
    """The share of found groups holding one person's photos, every one of them."""
    if not len(found):
        return float("nan")
    pairs = pd.DataFrame({"group": found, "person": true})
    per_group = pairs.groupby("group")["person"].agg(["nunique", "first", "size"])
    person_size = pairs["person"].value_counts()
    exact = (per_group["nunique"] == 1) & (
        per_group["size"].to_numpy() == person_size[per_group["first"]].to_numpy()
    )
    return float(exact.mean())


def people_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Val F1 alone and after each step, with the groups found and with the true people."""
    rows = []
    for source, name in SOURCES.items():
        row = {"groups": name, "alone": summary.get("val_f1")}
        for step, label in (("_agree", "agree"), ("_structure", "structure"), ("", "both")):
            row[label] = summary.get(f"val_f1_{source}{step}")
        rows.append(row)
    return pd.DataFrame(rows)


def people_lines(summary: dict[str, Any]) -> list[str]:
    """The report's section on people (none for a run without the measurement)."""
    if summary.get("people_ari") is None:
        return []
    alone = summary["val_f1"]
    ceiling = summary["val_f1_true"] - alone
    kept = (summary["val_f1_people"] - alone) / ceiling if ceiling > 0 else float("nan")
    steps = {name: summary[f"val_f1_people_{name}"] - alone for name in ("agree", "structure")}
    return [
        "## People",
        "",
        f"The validation photos grouped into people as `predict people.group=true` would: "
        f"{summary['people_groups']} groups, adjusted Rand index {summary['people_ari']:.3f} "
        f"against the true people, {summary['people_exact']:.0%} of the groups exactly one "
        f"person ({summary['people_seconds']:.2f} s). Val F1 with each step "
        "(`people.agree`, `people.structure`, both):",
        "",
        people_table(summary).round(4).to_markdown(index=False),
        "",
        f"With the groups found, agree alone {steps['agree']:+.4f}, structure alone "
        f"{steps['structure']:+.4f}, both {summary['people_gain']:+.4f} over alone; "
        f"with the true people {ceiling:+.4f}"
        + (f" (the groups found keep {kept:.0%} of it)." if np.isfinite(kept) else ".")
        + " One run: compare seeds with `report --group` before trusting a gain.",
        "",
    ]


def contact_sheet(predictions: pd.DataFrame, count: int = 6) -> Figure:
    """A few groups found, one row each: photos that are not the group's main person framed
    in red, groups mixing people first. ``predictions``: ``path`` and ``group`` per photo and,
    where known, ``person`` and ``pred`` (``val_predictions.csv``; or ``groups.csv`` with the
    eval photos' paths)."""
    if "group" not in predictions or predictions.empty:
        return message_figure(Figure(figsize=(10, 3)), "no groups: no photos, or an older run")
    table = predictions.assign(person=predictions.get("person", predictions["group"]))
    mixed = table.groupby("group")["person"].nunique().sort_values(ascending=False, kind="stable")
    shown = list(mixed.index[:count])
    columns = int(table["group"].value_counts().max())
    figure = Figure(figsize=(1.6 * columns, 2.2 * len(shown)), layout="constrained")
    rows = figure.subfigures(len(shown), 1, squeeze=False).ravel()
    for row, number in zip(rows, shown, strict=True):
        members = table[table["group"] == number].sort_values("person", kind="stable")
        main = members["person"].mode().iloc[0]
        row.suptitle(
            f"group {number}: {len(members)} photos of {mixed[number]} "
            f"{'person' if mixed[number] == 1 else 'people'}",
            fontsize=9,
            fontweight="bold",
        )
        axes = row.subplots(1, columns, squeeze=False).ravel()
        for ax, shot in zip(axes, members.itertuples(), strict=False):
            caption = class_name(shot.pred) if "pred" in members else ""
            show_photo(ax, shot.path, str(shot.person)[:14], fontsize=7)
            ax.set_xlabel(caption, fontsize=7)
            if shot.person != main:
                ax.set_frame_on(True)
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(3)
        for ax in axes[len(members) :]:
            ax.remove()
    figure.suptitle("People found: groups as predict people.group=true makes them")
    return figure
