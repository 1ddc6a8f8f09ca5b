"""Error analysis of a run's validation predictions: scores with their intervals, taxonomy,
per-class and per-age tables, label suspects (``run_report.py`` writes them into the run
directory; the notebook and the ledger use the same functions). It reads
``val_predictions.csv`` with ``metrics.csv``, ``summary.json`` and the run's ``data.age_bins``.

Error taxonomy, as in the hand-written experiment log. Each mistake (predicted class ≠ true
class) counts under exactly one primary category, the first that applies:

- ``incorrect_vs_worn``, ``worn_vs_not_worn``, ``incorrect_vs_not_worn``: the mask state is
  wrong; the pair {true, predicted} names the category, in either direction;
- ``gender``: mask right, gender wrong;
- ``age_boundary``: mask and gender right, true and predicted age groups adjacent, and the
  person's age within N years (``boundary_years``, default 3) of the threshold t between the
  two groups: t − N ≤ age < t + N, N ages on either side (27–32 around 30 for N = 3);
- ``age_other``: every other age error.

So the counts add up to the number of mistakes; a share is count / mistakes. Besides them,
``multi_attribute`` counts the mistakes wrong in two or three of mask, gender and age (each is
also counted under its primary category).

Label suspects: a person whose photos are predicted with another gender (or age group) than
their label on most of them (more than ``suspect_share``, by default half: 4 of 7 photos) is a
candidate for label noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mask_age_gender.files import PREDICTIONS, PROBABILITIES
from mask_age_gender.labels import (
    DEFAULT_AGE_BINS,
    NUM_CLASSES,
    TASKS,
    attribute_name,
    check_age_bins,
    class_name,
    decode,
    near_threshold,
)
from mask_age_gender.models.scores import confusion_matrix, per_class, score
from mask_age_gender.results.bootstrap import person_bootstrap, summary_intervals
from mask_age_gender.results.run_reader import read_history, read_summary, run_age_bins

# wear=0, incorrect=1, not_wear=2: the sum of two different states names their pair
MASK_PAIR_BY_SUM = {1: "incorrect_vs_worn", 2: "worn_vs_not_worn", 3: "incorrect_vs_not_worn"}
CATEGORIES = (*MASK_PAIR_BY_SUM.values(), "gender", "age_boundary", "age_other")


@dataclass
class RunAnalysis:
    """Everything the report, its plots and the notebook show about one run's validation."""

    predictions: pd.DataFrame  # val_predictions.csv + decoded attributes, confidence, category
    age_bins: tuple[int, int]
    boundary_years: int
    scores: dict[str, float]  # f1, acc, f1_mask, f1_gender, f1_age (scores.score)
    taxonomy: dict[str, Any]
    per_class: pd.DataFrame  # 18 rows: support, predicted, precision, recall, f1
    by_age: pd.DataFrame  # one row per true age: photos, f1, age group accuracy
    suspects: pd.DataFrame  # one row per (person, attribute) the predictions dispute
    history: pd.DataFrame | None = None  # per-epoch metrics, when the run logged them
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None

    @property
    def mistakes(self) -> pd.DataFrame:
        """The wrongly predicted photos, most confident first."""
        wrong = self.predictions[~self.predictions["correct"]]
        return wrong.sort_values("confidence", ascending=False, kind="stable")

    @cached_property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """The 95 % intervals of the F1s over validation people: ``summary.json``'s, computed
        when the run finished; computed here (once) only for predictions without them."""
        table = self.predictions
        kept = summary_intervals(self.summary)
        return kept or person_bootstrap(table["true"], table["pred"], table["person"])


def analyse_run(run_dir: Path, boundary_years: int = 3) -> RunAnalysis:
    """The analysis of a run directory's ``val_predictions.csv`` with its age bins."""
    run_dir = Path(run_dir)
    path = run_dir / PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: the run did not finish its validation")
    return analyse(
        pd.read_csv(path),
        run_age_bins(run_dir),
        boundary_years,
        history=read_history(run_dir),
        summary=read_summary(run_dir),
        run_dir=run_dir,
    )


def analyse(
    predictions: pd.DataFrame,
    age_bins: tuple[int, int] = DEFAULT_AGE_BINS,
    boundary_years: int = 3,
    **context: Any,
) -> RunAnalysis:
    """The analysis of a prediction table (columns of ``val_predictions.csv``).

    ``context`` fills the optional fields of ``RunAnalysis`` (history, summary, run_dir).
    """
    age_bins = check_age_bins(age_bins)
    table = with_attributes(predictions, age_bins, boundary_years)
    return RunAnalysis(
        predictions=table,
        age_bins=age_bins,
        boundary_years=boundary_years,
        scores=score(table["pred"], table["true"]),
        taxonomy=error_taxonomy(table),
        per_class=per_class_scores(table),
        by_age=scores_by_age(table),
        suspects=label_suspects(table, age_bins),
        **context,
    )


def with_attributes(
    predictions: pd.DataFrame, age_bins: tuple[int, int], boundary_years: int
) -> pd.DataFrame:
    """The table with decoded attributes, confidence, correctness and error category."""
    table = predictions.reset_index(drop=True).copy()
    for side in ("true", "pred"):
        for task, values in zip(TASKS, decode(table[side].to_numpy()), strict=True):
            table[f"{side}_{task}"] = values
    if set(PROBABILITIES) <= set(table.columns):
        probs = table[PROBABILITIES].to_numpy()
        table["confidence"] = probs[np.arange(len(table)), table["pred"].to_numpy()]
    else:
        table["confidence"] = np.nan
    table["correct"] = table["true"] == table["pred"]
    wrong = [table[f"true_{task}"] != table[f"pred_{task}"] for task in TASKS]
    table["wrong_attributes"] = np.sum(wrong, axis=0)
    table["category"] = error_categories(table, age_bins, boundary_years)
    return table


def error_categories(
    table: pd.DataFrame, age_bins: tuple[int, int], boundary_years: int
) -> np.ndarray:
    """The primary category of each mistake ('' for a correct photo), as the docstring says."""
    true_age, pred_age = table["true_age"].to_numpy(), table["pred_age"].to_numpy()
    threshold = np.asarray(age_bins)[np.clip(np.minimum(true_age, pred_age), 0, 1)]
    age = table["age"].to_numpy()
    near = near_threshold(age, threshold, boundary_years)
    mask_sum = table["true_mask"].to_numpy() + table["pred_mask"].to_numpy()
    mask_wrong = table["true_mask"] != table["pred_mask"]
    conditions = [table["correct"]]
    conditions += [mask_wrong & (mask_sum == s) for s in MASK_PAIR_BY_SUM]
    conditions += [table["true_gender"] != table["pred_gender"]]
    conditions += [(np.abs(true_age - pred_age) == 1) & near]
    choices = ["", *MASK_PAIR_BY_SUM.values(), "gender", "age_boundary"]
    return np.select(conditions, choices, default="age_other")


def error_taxonomy(table: pd.DataFrame) -> dict[str, Any]:
    """Counts and shares of each primary category and of multi-attribute mistakes."""
    mistakes = int((~table["correct"]).sum())

    def entry(count: int) -> dict[str, float]:
        return {"count": count, "share": round(count / mistakes, 4) if mistakes else 0.0}

    counts = table["category"].value_counts()
    return {
        "photos": len(table),
        "mistakes": mistakes,
        "categories": {name: entry(int(counts.get(name, 0))) for name in CATEGORIES},
        "multi_attribute": entry(int((table["wrong_attributes"] >= 2).sum())),
    }


def per_class_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall and F1 of each of the 18 classes (0 where undefined), with counts."""
    classes = np.arange(NUM_CLASSES)
    counts = per_class(confusion_matrix(table["pred"], table["true"]))
    return pd.DataFrame(
        {
            "class": classes,
            "name": [class_name(k) for k in classes],
            "support": counts["support"],
            "predicted": counts["predicted"],
            **{name: counts[name].round(4) for name in ("precision", "recall", "f1")},
        }
    )


def scores_by_age(table: pd.DataFrame) -> pd.DataFrame:
    """Per true age: photos, 18-class macro F1 and the share with the right age group."""
    rows = []
    for age, photos in table.groupby("age"):
        scores = score(photos["pred"], photos["true"])
        age_right = (photos["true_age"] == photos["pred_age"]).mean()
        rows.append((int(age), len(photos), round(scores["f1"], 4), round(age_right, 4)))
    return pd.DataFrame(rows, columns=["age", "photos", "f1", "age_group_acc"])


def label_suspects(
    table: pd.DataFrame, age_bins: tuple[int, int], suspect_share: float = 0.5
) -> pd.DataFrame:
    """People whose gender or age group label most of their photos' predictions dispute."""
    rows = []
    for person, photos in table.groupby("person", sort=True):
        for task in ("gender", "age"):
            label = int(photos[f"true_{task}"].iloc[0])
            disputing = photos[photos[f"pred_{task}"] != label]
            if len(disputing) <= suspect_share * len(photos):
                continue
            predicted = int(disputing[f"pred_{task}"].mode().iloc[0])
            rows.append(
                {
                    "person": person,
                    "age": int(photos["age"].iloc[0]),
                    "attribute": task,
                    "label": attribute_name(task, label, age_bins),
                    "predicted": attribute_name(task, predicted, age_bins),
                    "disputing": len(disputing),
                    "photos": len(photos),
                    "confidence": round(float(disputing["confidence"].mean()), 4),
                }
            )
    columns = ["person", "age", "attribute", "label", "predicted", "disputing", "photos"]
    return pd.DataFrame(rows, columns=[*columns, "confidence"])


def taxonomy_table(run: RunAnalysis) -> pd.DataFrame:
    """The taxonomy as a table: one row per category, then the total and multi-attribute."""
    taxonomy = run.taxonomy
    rows = [{"category": name, **entry} for name, entry in taxonomy["categories"].items()]
    rows.append({"category": "total", "count": taxonomy["mistakes"], "share": 1.0})
    rows.append({"category": "multi_attribute (also above)", **taxonomy["multi_attribute"]})
    return pd.DataFrame(rows)
