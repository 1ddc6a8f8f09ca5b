"""The figures of the error analysis, drawn with matplotlib's object API (no pyplot).

Figures made with ``matplotlib.figure.Figure`` keep no global state and need no GUI: they are
rendered by the Agg canvas when saved, and display inline when a notebook cell returns one.
``run_figures(run)`` gives each figure by the file name it is saved under.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import ConfusionMatrixDisplay

from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.faces.boxes import box_rows, boxes_of, read_face_boxes
from mask_age_gender.data.photos import load_rgb
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.files import write_bytes_atomic
from mask_age_gender.labels import NUM_CLASSES, TASK_CLASSES, TASKS, attribute_name, class_name
from mask_age_gender.results.error_analysis import RunAnalysis
from mask_age_gender.results.run_reader import run_config

FIGURES = (
    "confusion.png",
    "confusion_tasks.png",
    "curves.png",
    "f1_by_age.png",
    "mistakes.png",
    "suspects.png",
)
THUMBNAIL = 192  # longest side of a photo in a gallery, in pixels


def run_figures(run: RunAnalysis) -> dict[str, Figure]:
    """Every figure of the analysis, by its file name (``FIGURES``)."""
    drawn = [
        confusion_figure(run),
        task_confusion_figure(run),
        curves_figure(run),
        f1_by_age_figure(run),
        mistakes_figure(run),
        suspects_figure(run),
    ]
    return dict(zip(FIGURES, drawn, strict=True))


def save_png(figure: Figure, path: Path) -> Path:
    """Write a figure as a PNG, atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return write_bytes_atomic(path, buffer.getvalue())


def confusion_figure(run: RunAnalysis) -> Figure:
    """18×18 confusion matrix of the validation photos, rows true, columns predicted."""
    table = run.predictions
    labels = list(range(NUM_CLASSES))
    figure = Figure(figsize=(11, 10), layout="constrained")
    ax = figure.subplots()
    names = [f"{k} {class_name(k)}" for k in labels]
    draw_matrix(ax, table["true"], table["pred"], labels, names)
    ax.set_title(
        f"Confusion matrix, {len(table)} validation photos (macro F1 {run.scores['f1']:.3f})"
    )
    return figure


def task_confusion_figure(run: RunAnalysis) -> Figure:
    """Confusion matrices of mask state, gender and age group side by side."""
    table = run.predictions
    figure = Figure(figsize=(14, 4.6), layout="constrained")
    for ax, task in zip(figure.subplots(1, 3), TASKS, strict=True):
        values = list(range(TASK_CLASSES[task]))
        names = [attribute_name(task, v, run.age_bins) for v in values]
        draw_matrix(ax, table[f"true_{task}"], table[f"pred_{task}"], values, names)
        ax.set_title(f"{task} (F1 {run.scores[f'f1_{task}']:.3f})")
    return figure


def draw_matrix(ax, true: pd.Series, pred: pd.Series, labels: list[int], names: list[str]) -> None:
    """scikit-learn's confusion matrix display in ``ax``, every class shown even when absent;
    zero cells left blank, so the few mistakes among 324 cells stand out."""
    display = ConfusionMatrixDisplay.from_predictions(
        true,
        pred,
        labels=labels,
        display_labels=names,
        ax=ax,
        cmap="Blues",
        colorbar=False,
        xticks_rotation="vertical",
        values_format="d",
        text_kw={"fontsize": 8},
    )
    for text, count in zip(display.text_.ravel(), display.confusion_matrix.ravel(), strict=True):
        text.set_visible(bool(count))


def curves_figure(run: RunAnalysis) -> Figure:
    """Train and validation loss and macro F1 per epoch, the best epoch marked. A multi-head
    run's per-head losses (``train/loss_mask``, …: unweighted, so they sum to the loss only
    with ``loss.head_weights``) are dashed (train) and dotted (validation), a colour per head."""
    history = run.history
    if history is None:
        return message_figure(
            Figure(figsize=(10, 3)), "no per-epoch metrics (metrics.csv) in this run"
        )
    figure = Figure(figsize=(11, 4), layout="constrained")
    best = run.summary.get("best_epoch")
    for ax, metric in zip(figure.subplots(1, 2), ("loss", "f1"), strict=True):
        for stage in ("train", "val"):
            column = history.get(f"{stage}/{metric}")
            if column is not None and column.notna().any():
                ax.plot(column.dropna().index, column.dropna(), marker="o", label=stage)
        if metric == "loss":
            draw_head_losses(ax, history)
        if best is not None:
            ax.axvline(best, color="grey", linestyle="--", label=f"best epoch {best}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("macro F1" if metric == "f1" else "loss")
        ax.set_title(f"{'macro F1' if metric == 'f1' else 'loss'} per epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    return figure


def draw_head_losses(ax, history) -> None:
    """``{stage}/loss_{task}`` of each head that the run logged, thin, in the colour of its
    head; none for a single-head run."""
    for colour, task in enumerate(TASKS, start=2):  # C0 and C1 are the summed losses
        for stage, style in (("train", "--"), ("val", ":")):
            column = history.get(f"{stage}/loss_{task}")
            if column is not None and column.notna().any():
                ax.plot(
                    column.dropna().index,
                    column.dropna(),
                    color=f"C{colour}",
                    linestyle=style,
                    linewidth=1,
                    label=f"{stage} {task} (unweighted)",
                )


def f1_by_age_figure(run: RunAnalysis) -> Figure:
    """Macro F1 per true age (one bar a year) and the right-age-group share: the boundary dip."""
    figure = Figure(figsize=(12, 4), layout="constrained")
    ax = figure.subplots()
    by_age = run.by_age
    ax.bar(by_age["age"], by_age["f1"], width=0.8, color="tab:blue", label="macro F1 (18 classes)")
    ax.plot(by_age["age"], by_age["age_group_acc"], "k.", label="share with the right age group")
    for threshold in run.age_bins:
        ax.axvline(threshold - 0.5, color="tab:red", linestyle="--")
        ax.text(threshold - 0.5, 1.02, f" {threshold}", color="tab:red", va="bottom")
    window = run.boundary_years
    for threshold in run.age_bins:
        ax.axvspan(threshold - window - 0.5, threshold + window - 0.5, color="tab:red", alpha=0.08)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("score")
    ax.set_title(f"Validation by true age (shaded: ±{window} years around the age thresholds)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return figure


def mistakes_figure(run: RunAnalysis, count: int = 16, columns: int = 4) -> Figure:
    """Gallery of the most confident mistakes, true and predicted class written on each; as
    the network saw them where the run cut photos to their faces (:func:`network_view`)."""
    mistakes = run.mistakes.head(count)
    rows = max(1, -(-len(mistakes) // columns))
    if mistakes.empty:
        return message_figure(Figure(figsize=(10, 3)), "no mistakes on validation")
    figure = Figure(figsize=(3 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    seen = network_view(run, list(mistakes["path"]))
    for k, (ax, row) in enumerate(zip(axes, mistakes.itertuples(), strict=False)):
        title = (
            f"true {class_name(row.true)}, age {row.age}\n"
            f"pred {class_name(row.pred)} p={row.confidence:.2f}\n{row.category}"
        )
        show_photo(ax, row.path, title, fontsize=8, image=None if seen is None else seen[k])
    for ax in axes[len(mistakes) :]:
        ax.remove()
    how = ", as the network saw them (face crop)" if seen is not None else ""
    figure.suptitle(
        f"The {len(mistakes)} most confident mistakes (of {run.taxonomy['mistakes']}){how}"
    )
    return figure


def face_crop_figure(run: RunAnalysis, count: int = 7) -> Figure | None:
    """The first ``count`` validation photos (one person's seven, in path order) above the
    crops the network saw; None for a run without a face crop (the notebook shows nothing)."""
    paths = sorted(run.predictions["path"])[:count]
    seen = network_view(run, paths)
    if seen is None:
        return None
    figure = Figure(figsize=(1.8 * len(paths), 4.6), layout="constrained")
    axes = figure.subplots(2, len(paths), squeeze=False)
    for column, (path, crop) in enumerate(zip(paths, seen, strict=True)):
        show_photo(axes[0, column], path, Path(path).stem, fontsize=7)
        show_photo(axes[1, column], path, "the network's view", fontsize=7, image=crop)
    figure.suptitle(f"Photos and their face crops (boxes: {Path(run.summary['face_boxes']).name})")
    return figure


def network_view(run: RunAnalysis, paths: list[str]) -> list[np.ndarray] | None:
    """The photos as a face-crop run's network saw them (small): decoded and prepared, i.e.
    cut to the face and resized to ``data.image_size``, by the run's own transform and boxes
    file (``summary.json``'s ``face_boxes``). None for a run without a face crop, or whose
    archive or boxes file is gone: the gallery then shows the photos as they are."""
    face_boxes = run.summary.get("face_boxes")
    if not face_boxes or run.run_dir is None:
        return None
    config = run_config(run.run_dir)
    try:
        data = config["data"]
        pipeline = build_transform(
            config["transform"], data["image_size"], [0.0] * 3, [1.0] * 3, False, "loader"
        )
        table = boxes_of(read_face_boxes(face_boxes, data["root"]), paths, data["root"])
        dataset = FaceDataset(paths, None, pipeline, boxes=box_rows(table))
        return [thumbnail(dataset.prepare(k)) for k in range(len(paths))]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def suspects_figure(run: RunAnalysis, people: int = 6) -> Figure:
    """The photos of the people whose labels the predictions dispute, one row a person."""
    suspects = run.suspects.drop_duplicates("person").head(people)
    if suspects.empty:
        return message_figure(Figure(figsize=(10, 3)), "no person with a disputed label")
    by_person = dict(list(run.predictions.groupby("person")))
    columns = max(len(by_person[p]) for p in suspects["person"])
    figure = Figure(figsize=(1.8 * columns, 2.9 * len(suspects)), layout="constrained")
    rows = figure.subfigures(len(suspects), 1, squeeze=False).ravel()
    for row, person in zip(rows, suspects["person"], strict=True):
        disputes = run.suspects[run.suspects["person"] == person]
        claims = "; ".join(
            f"{r.attribute} {r.label} → {r.predicted} on {r.disputing}/{r.photos} photos"
            for r in disputes.itertuples()
        )
        row.suptitle(f"{person}: {claims}", fontsize=9, fontweight="bold")
        axes = row.subplots(1, columns, squeeze=False).ravel()
        photos = by_person[person].sort_values("path")
        for ax, shot in zip(axes, photos.itertuples(), strict=False):
            show_photo(ax, shot.path, f"{Path(shot.path).stem}", fontsize=7)
            ax.set_xlabel(f"pred {class_name(shot.pred)}", fontsize=7)
        for ax in axes[len(photos) :]:
            ax.remove()
    figure.suptitle("People whose label most of their photos' predictions dispute")
    return figure


def show_photo(ax, path: str, title: str, fontsize: int, image: np.ndarray | None = None) -> None:
    """A photo (``image`` if given, else the file) in an axes with a title and no axis (ticks
    removed: they are slow to lay out)."""
    ax.imshow(photo(path) if image is None else image)
    ax.set_title(title, fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)


def photo(path: str) -> np.ndarray:
    """A photo as a small RGB array; a grey tile when the file is gone (the archive moved)."""
    try:
        return thumbnail(load_rgb(path))
    except OSError:
        return np.full((4, 3, 3), 200, dtype=np.uint8)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """An RGB array shrunk to at most ``THUMBNAIL`` pixels a side, its shape kept."""
    small = Image.fromarray(image)
    small.thumbnail((THUMBNAIL, THUMBNAIL))
    return np.asarray(small)


def message_figure(figure: Figure, text: str) -> Figure:
    """A figure that says why there is nothing to draw (so every file always exists)."""
    ax = figure.add_axes((0.02, 0.02, 0.96, 0.96))
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return figure


def groups_figure(groups: pd.DataFrame) -> Figure:
    """Each configuration's mean val macro F1 with its 95 % interval (``report --group``), one
    row each, best at the top; the baseline's mean as a dashed line where there is one."""
    scored = groups[groups["n"] > 0].iloc[::-1]
    figure = Figure(figsize=(8, 1.2 + 0.45 * max(len(scored), 1)), layout="constrained")
    if scored.empty:
        return message_figure(figure, "no finished run to summarise")
    ax = figure.subplots()
    config = list(groups.columns[: groups.columns.get_loc("n")])
    labels = [
        ", ".join(f"{key}={row[key]}" for key in config) + f"  (n={row['n']})"
        for _, row in scored.iterrows()
    ]
    mean = scored["val_f1_mean"].to_numpy(float)
    low, high = scored["val_f1_ci_low"].to_numpy(float), scored["val_f1_ci_high"].to_numpy(float)
    error = np.nan_to_num(np.vstack([mean - low, high - mean]))  # n=1: the mean alone
    rows = np.arange(len(scored))
    ax.errorbar(mean, rows, xerr=error, fmt="o", capsize=4)
    ax.set_yticks(rows, labels)
    if "baseline" in groups and groups["baseline"].any():
        reference = groups.loc[groups["baseline"].astype(bool), "val_f1_mean"].iloc[0]
        ax.axvline(reference, color="grey", linestyle="--", label="baseline mean")
        ax.legend(loc="lower right")
    ax.set_xlabel("val macro F1: mean and 95 % t-interval over seeds/folds")
    ax.grid(axis="x", alpha=0.3)
    return figure
