"""A run's error analysis written into its folder: ``report.md``, ``errors.json``, the PNGs
named in ``plots.FIGURES`` and ``attention_plots.FIGURES``, ``people.png`` and
``attention.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mask_age_gender.data.faces.boxes import boxes_of, read_face_boxes
from mask_age_gender.files import (
    ATTENTION,
    ERRORS,
    REPORT,
    SUMMARY,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)
from mask_age_gender.results import attention_plots, plots
from mask_age_gender.results.attention import MASK_STATES, attend_run, attention_summary
from mask_age_gender.results.bootstrap import RESAMPLES
from mask_age_gender.results.error_analysis import RunAnalysis, analyse_run, taxonomy_table
from mask_age_gender.results.ledger import MISSING
from mask_age_gender.results.people_gain import contact_sheet, people_lines
from mask_age_gender.results.run_reader import read_summary, run_config

PEOPLE_FIGURE = "people.png"  # a few validation groups found (people_gain.contact_sheet)
FIGURES = (*plots.FIGURES, *attention_plots.FIGURES, PEOPLE_FIGURE)  # every PNG of the analysis


def write_error_analysis(
    run_dir: Path, boundary_years: int = 3, device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Write ``report.md``, ``errors.json``, the PNGs of the error analysis and the run's
    class-activation maps (``attention.csv``, their figures, ``val_cam_*`` in
    ``summary.json``; computed on ``device``) into a run.

    Returns the content of ``errors.json``.
    """
    run_dir = Path(run_dir)
    run = analyse_run(run_dir, boundary_years)
    shown = attention_plots.gallery(run.predictions)
    attention = attend_run(run_dir, run.predictions, list(shown["path"]), device)
    figures = plots.run_figures(run) | attention_plots.attention_figures(attention, shown)
    figures[PEOPLE_FIGURE] = contact_sheet(run.predictions)
    for name, figure in figures.items():
        plots.save_png(figure, run_dir / name)
    write_csv_atomic(run_dir / ATTENTION, attention.table)
    cam = attention_summary(attention)
    if (run_dir / SUMMARY).is_file():
        kept = {k: v for k, v in read_summary(run_dir).items() if not k.startswith("val_cam_")}
        run.summary = kept | cam  # a rerun's val_cam_* replace the last ones, all of them
        write_json_atomic(run_dir / SUMMARY, run.summary)
    errors = errors_json(run, files=list(figures)) | {"attention": cam}
    write_json_atomic(run_dir / ERRORS, errors)
    write_text_atomic(run_dir / REPORT, report_markdown(run, list(figures), cam))
    return errors


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
        "intervals": {
            name: [round(low, 6), round(high, 6)] for name, (low, high) in run.intervals.items()
        },
        "taxonomy": run.taxonomy,
        "per_class": run.per_class.to_dict(orient="records"),
        "by_age": run.by_age.to_dict(orient="records"),
        "suspects": run.suspects.to_dict(orient="records"),
        "confident_mistakes": confident[columns].to_dict(orient="records"),
        "files": files,
    }


def report_markdown(run: RunAnalysis, figures: list[str], cam: dict[str, Any] | None = None) -> str:
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
        pd.DataFrame([run.scores]).round(4).to_markdown(index=False, missingval=MISSING),
        *interval_lines(run),
        *training_lines(run.summary),
        *face_crop_lines(run),
        *attention_lines(cam or {}),
        *people_lines(run.summary),
        "## Error taxonomy",
        "",
        f"Each mistake counted once, under its first category (age boundary: adjacent groups, "
        f"age within {run.boundary_years} years of {low} or {high}).",
        "",
        taxonomy_table(run).to_markdown(index=False, missingval=MISSING),
        "",
        "## Takeaways",
        "",
        *takeaways(run),
        "",
        "## Per class",
        "",
        run.per_class.to_markdown(index=False, missingval=MISSING),
        "",
        "## Label suspects",
        "",
        "People whose photos are predicted with another gender or age group than their label on "
        "most of them: candidates for label noise.",
        "",
        run.suspects.to_markdown(index=False, missingval=MISSING) if len(run.suspects) else "None.",
        "",
        "## Plots",
        "",
        *[f"![{Path(name).stem}]({name})" for name in figures],
    ]
    return "\n".join(lines) + "\n"


def interval_table(run: RunAnalysis) -> pd.DataFrame:
    """Each F1 with its 95 % interval over which people happened to validate (``summary.json``'s
    where the run kept them)."""
    return pd.DataFrame(
        [
            {"score": name, "value": run.scores[name], "ci_low": low, "ci_high": high}
            for name, (low, high) in run.intervals.items()
        ]
    )


def interval_lines(run: RunAnalysis) -> list[str]:
    """The report's interval table with what it means."""
    resamples = run.summary.get("val_ci_resamples", RESAMPLES)
    return [
        "",
        f"95 % intervals by bootstrap over the validation people ({resamples:,} resamples, each "
        "person's photos together): how much the score owes to who validated, not training noise.",
        "",
        interval_table(run).round(4).to_markdown(index=False, missingval=MISSING),
    ]


def training_lines(summary: dict[str, Any]) -> list[str]:
    """The training section of the report, from ``summary.json`` (empty without one)."""
    if not summary:
        return [""]
    keys = ["best_epoch", "epochs_run", "train_loss", "train_acc", "train_f1", "val_loss"]
    keys += ["seconds", "best_ckpt"]
    values = {key: summary.get(key) for key in keys}
    table = pd.DataFrame([values]).round(4)
    return ["", "## Training", "", table.to_markdown(index=False, missingval=MISSING), ""]


def face_crop_lines(run: RunAnalysis) -> list[str]:
    """The detection coverage of a face-crop run: faces found among all its photos (from
    ``summary.json``) and, per photo kind, among the validation photos (from its boxes file).
    Empty for a run without a face crop."""
    summary = run.summary
    if not summary.get("face_boxes"):
        return []
    found, photos = summary.get("faces_found", 0), summary.get("faces_photos", 0)
    lines = [
        "## Face crop",
        "",
        f"Boxes from `{summary['face_boxes']}`: a face in {found} of {photos} photos "
        f"({found / max(photos, 1):.1%}); the others got the centre crop.",
        "",
    ]
    by_kind = faces_by_kind(run)
    if by_kind is not None:
        lines += [by_kind.to_markdown(index=False, missingval=MISSING), ""]
    return lines


def faces_by_kind(run: RunAnalysis) -> pd.DataFrame | None:
    """Validation photos and faces found per photo kind (mask1 … normal); None when the boxes
    file or the archive cannot be read any more (moved, say)."""
    root = (run_config(run.run_dir).get("data") or {}).get("root") if run.run_dir else None
    if root is None:
        return None
    paths = list(run.predictions["path"])
    try:
        boxes = boxes_of(read_face_boxes(run.summary["face_boxes"], root), paths, root)
    except (OSError, ValueError):
        return None
    boxes["kind"] = [Path(p).stem for p in paths]
    table = boxes.groupby("kind", sort=True)["found"].agg(photos="count", faces_found="sum")
    return table.reset_index().astype({"faces_found": int})


def attention_lines(cam: dict[str, Any]) -> list[str]:
    """Where the network looks (``attention.py``): its face share against a uniform map's, by
    mask state, and the cost; or why there are no maps. Empty without the analysis."""
    if not cam:
        return []
    lines = ["## Where the network looks", ""]
    if cam.get("val_cam_layer") is None or cam.get("val_cam_face_share") is None:
        return [*lines, f"No face share: {cam.get('val_cam_note')}.", ""]
    states = ", ".join(
        f"{state} {cam[f'val_cam_face_share_{state}']:.2f}"
        for state in MASK_STATES
        if cam.get(f"val_cam_face_share_{state}") is not None
    )
    return [
        *lines,
        f"Grad-CAM of the predicted class at `{cam['val_cam_layer']}` on the photos as the "
        f"network saw them: on average **{cam['val_cam_face_share']:.2f}** of a map's mass lies "
        f"in the face box, where a uniform map would put {cam['val_cam_face_area']:.2f} (the "
        f"box's share of the view); by true mask state {states}. {cam['val_cam_photos']} photos "
        f"with a box from `{cam['val_cam_boxes']}`; "
        f"{cam['val_cam_seconds_per_1000']:.1f} s per 1,000 photos.",
        "",
    ]


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
