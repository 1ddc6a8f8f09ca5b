"""Error analysis of a run's validation predictions, written into the run directory.

``write_error_analysis(run_dir)`` reads ``val_predictions.csv`` (with ``metrics.csv``,
``summary.json`` and the run's ``data.age_bins``) and writes ``report.md``, ``errors.json`` and
the PNGs named in ``plots.FIGURES``. The notebook and the ledger use the same functions.

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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.classification import (
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from mask_age_gender import plots
from mask_age_gender.files import write_json_atomic, write_text_atomic
from mask_age_gender.labels import (
    DEFAULT_AGE_BINS,
    NUM_CLASSES,
    TASKS,
    attribute_name,
    check_age_bins,
    class_name,
    decode,
)
from mask_age_gender.metrics import score
from mask_age_gender.runs import (
    PREDICTIONS,
    PROBABILITIES,
    read_history,
    read_summary,
    run_age_bins,
)

REPORT = "report.md"
ERRORS = "errors.json"
MASK_CATEGORIES = ("incorrect_vs_worn", "worn_vs_not_worn", "incorrect_vs_not_worn")
CATEGORIES = (*MASK_CATEGORIES, "gender", "age_boundary", "age_other")
# wear=0, incorrect=1, not_wear=2: the sum of two different states names their pair
MASK_PAIR_BY_SUM = {1: "incorrect_vs_worn", 2: "worn_vs_not_worn", 3: "incorrect_vs_not_worn"}


@dataclass
class RunAnalysis:
    """Everything the report, its plots and the notebook show about one run's validation."""

    predictions: pd.DataFrame  # val_predictions.csv + decoded attributes, confidence, category
    age_bins: tuple[int, int]
    boundary_years: int
    scores: dict[str, float]  # f1, acc, f1_mask, f1_gender, f1_age (metrics.score)
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


def write_error_analysis(run_dir: Path, boundary_years: int = 3) -> dict[str, Any]:
    """Write ``report.md``, ``errors.json`` and the PNGs of the error analysis into a run.

    Returns the content of ``errors.json``.
    """
    run_dir = Path(run_dir)
    run = analyse_run(run_dir, boundary_years)
    for name, figure in plots.run_figures(run).items():
        plots.save_png(figure, run_dir / name)
    errors = errors_json(run, files=list(plots.FIGURES))
    write_json_atomic(run_dir / ERRORS, errors)
    write_text_atomic(run_dir / REPORT, report_markdown(run, list(plots.FIGURES)))
    return errors


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
    suspect_share: float = 0.5,
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
        suspects=label_suspects(table, age_bins, suspect_share),
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
    near = (threshold - boundary_years <= age) & (age < threshold + boundary_years)
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
    """Precision, recall and F1 of each of the 18 classes (torchmetrics), with counts."""
    preds = torch.tensor(table["pred"].to_numpy())
    target = torch.tensor(table["true"].to_numpy())
    classes = np.arange(NUM_CLASSES)
    scores = {
        name: metric(preds, target, NUM_CLASSES, average=None).double().numpy().round(4)
        for name, metric in [
            ("precision", multiclass_precision),
            ("recall", multiclass_recall),
            ("f1", multiclass_f1_score),
        ]
    }
    return pd.DataFrame(
        {
            "class": classes,
            "name": [class_name(k) for k in classes],
            "support": np.bincount(table["true"], minlength=NUM_CLASSES),
            "predicted": np.bincount(table["pred"], minlength=NUM_CLASSES),
            **scores,
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


def errors_json(run: RunAnalysis, files: list[str], gallery: int = 16) -> dict[str, Any]:
    """The numbers of the analysis as plain JSON: scores, taxonomy, tables, file names."""
    confident = run.mistakes.head(gallery)
    columns = ["path", "person", "age", "true", "pred", "confidence", "category"]
    return {
        "run": str(run.run_dir) if run.run_dir else None,
        "age_bins": list(run.age_bins),
        "boundary_years": run.boundary_years,
        "people": int(run.predictions["person"].nunique()),
        "scores": {name: round(value, 6) for name, value in run.scores.items()},
        "taxonomy": run.taxonomy,
        "per_class": run.per_class.to_dict(orient="records"),
        "by_age": run.by_age.to_dict(orient="records"),
        "suspects": run.suspects.to_dict(orient="records"),
        "confident_mistakes": confident[columns].to_dict(orient="records"),
        "files": files,
    }


def report_markdown(run: RunAnalysis, figures: list[str]) -> str:
    """``report.md``: scores, training, taxonomy, takeaways, per-class table, suspects, plots."""
    title = run.run_dir.name if run.run_dir else "validation predictions"
    taxonomy = run.taxonomy
    low, high = run.age_bins
    lines = [
        f"# Error analysis: {title}",
        "",
        f"{taxonomy['photos']} validation photos of {run.predictions['person'].nunique()} "
        f"people, {taxonomy['mistakes']} mistakes. Age groups: young <{low}, middle "
        f"{low}–{high - 1}, old ≥{high}.",
        "",
        "## Scores",
        "",
        markdown_table(pd.DataFrame([run.scores]).round(4)),
        *training_lines(run.summary),
        "## Error taxonomy",
        "",
        f"Each mistake counted once, under its first category (age boundary: adjacent groups, "
        f"age within {run.boundary_years} years of {low} or {high}).",
        "",
        markdown_table(taxonomy_table(run)),
        "",
        "## Takeaways",
        "",
        *takeaways(run),
        "",
        "## Per class",
        "",
        markdown_table(run.per_class),
        "",
        "## Label suspects",
        "",
        "People whose photos are predicted with another gender or age group than their label on "
        "most of them: candidates for label noise.",
        "",
        markdown_table(run.suspects) if len(run.suspects) else "None.",
        "",
        "## Plots",
        "",
        *[f"![{Path(name).stem}]({name})" for name in figures],
    ]
    return "\n".join(lines) + "\n"


def training_lines(summary: dict[str, Any]) -> list[str]:
    """The training section of the report, from ``summary.json`` (empty without one)."""
    if not summary:
        return [""]
    keys = ["best_epoch", "epochs_run", "train_loss", "train_acc", "train_f1", "val_loss"]
    keys += ["seconds", "best_ckpt"]
    values = {key: summary.get(key) for key in keys}
    table = pd.DataFrame([values]).round(4)
    return ["", "## Training", "", markdown_table(table), ""]


def taxonomy_table(run: RunAnalysis) -> pd.DataFrame:
    """The taxonomy as a table: one row per category, then the total and multi-attribute."""
    taxonomy = run.taxonomy
    rows = [{"category": name, **entry} for name, entry in taxonomy["categories"].items()]
    rows.append({"category": "total", "count": taxonomy["mistakes"], "share": 1.0})
    rows.append({"category": "multi_attribute (also above)", **taxonomy["multi_attribute"]})
    return pd.DataFrame(rows)


def takeaways(run: RunAnalysis) -> list[str]:
    """A few generated sentences: the largest error source, the weakest classes, suspects."""
    taxonomy = run.taxonomy
    if not taxonomy["mistakes"]:
        return ["- No mistakes on validation."]
    name, entry = max(taxonomy["categories"].items(), key=lambda item: item[1]["count"])
    lines = [
        f"- Largest error source: {name}, {entry['count']} of {taxonomy['mistakes']} mistakes "
        f"({entry['share']:.0%})."
    ]
    present = run.per_class[run.per_class["support"] > 0].nsmallest(3, "f1")
    weakest = ", ".join(
        f"{r.name} (F1 {r.f1:.2f}, {r.support} photos)" for r in present.itertuples()
    )
    lines.append(f"- Weakest classes: {weakest}.")
    if len(run.suspects):
        lines.append(f"- {run.suspects['person'].nunique()} people with a disputed label.")
    return lines


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (missing values shown as ``-``)."""

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([header, rule, *body])
