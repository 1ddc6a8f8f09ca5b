"""The figures of where the network looks (``attention.py``): ``attention.png``, a map over a
right and a wrong photo of each class and over the most confident mistakes, drawn by captum's
``visualize_image_attr`` (the map blended over the photo in grey) with the face box in white;
and ``cam_face_share.png``, the histogram of the face shares by mask state."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from captum.attr import visualization
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mask_age_gender.labels import NUM_CLASSES, class_name
from mask_age_gender.results.attention import MASK_STATES, Attention, View
from mask_age_gender.results.plots import message_figure

FIGURES = ("attention.png", "cam_face_share.png")
CLASSES_PER_ROW = 3  # each class a pair of panels: right, wrong
TOP_MISTAKES = 6


def gallery(predictions: pd.DataFrame) -> pd.DataFrame:
    """The photos ``attention.png`` draws: per true class the most confident right and the
    most confident wrong prediction (``panel`` right/wrong), then the ``TOP_MISTAKES`` most
    confident mistakes (``panel`` mistake). ``predictions``: ``RunAnalysis.predictions``."""
    ordered = predictions.sort_values("confidence", ascending=False, kind="stable")
    pairs = ordered.groupby(["true", "correct"], sort=False).head(1)
    pairs = pairs.assign(panel=np.where(pairs["correct"], "right", "wrong"))
    mistakes = ordered[~ordered["correct"]].head(TOP_MISTAKES).assign(panel="mistake")
    return pd.concat([pairs, mistakes], ignore_index=True)


def attention_figures(attention: Attention, shown: pd.DataFrame) -> dict[str, Figure]:
    """Each figure by its file name (``FIGURES``)."""
    drawn = [attention_figure(attention, shown), share_figure(attention)]
    return dict(zip(FIGURES, drawn, strict=True))


def attention_figure(attention: Attention, shown: pd.DataFrame) -> Figure:
    """Grad-CAM over a right and a wrong photo of each of the 18 classes, then over the most
    confident mistakes; each titled with its classes, confidence and face share."""
    if attention.layer is None:
        return message_figure(Figure(figsize=(10, 3)), f"no maps: {attention.note}")
    shares = attention.table.set_index("path")["face_share"]
    rows = -(-NUM_CLASSES // CLASSES_PER_ROW)
    figure = Figure(figsize=(2.2 * 2 * CLASSES_PER_ROW, 2.6 * (rows + 1.3)), layout="constrained")
    classes, mistakes = figure.subfigures(2, 1, height_ratios=[rows, 1.3])
    axes = classes.subplots(rows, 2 * CLASSES_PER_ROW, squeeze=False)
    pairs = shown[shown["panel"] != "mistake"].set_index(["true", "panel"])
    for label in range(NUM_CLASSES):
        for side, panel in enumerate(("right", "wrong")):
            ax = axes[label // CLASSES_PER_ROW, 2 * (label % CLASSES_PER_ROW) + side]
            row = pairs.loc[(label, panel)] if (label, panel) in pairs.index else None
            if row is None or row["path"] not in attention.views:
                blank(ax, f"{class_name(label)}\nno {panel} photo")
                continue
            title = f"{class_name(label)}\n" + verdict(row, shares[row["path"]])
            draw_view(figure, ax, attention.views[row["path"]], title)
    classes.suptitle(
        f"Grad-CAM of the predicted class at {attention.layer}: the most confident right and "
        "wrong photo of each true class (white: the face box)"
    )
    top = shown[shown["panel"] == "mistake"]
    axes = mistakes.subplots(1, 2 * CLASSES_PER_ROW, squeeze=False).ravel()
    for ax, (_, row) in zip(axes, top.iterrows(), strict=False):
        title = f"true {class_name(row['true'])}\n" + verdict(row, shares[row["path"]])
        draw_view(figure, ax, attention.views[row["path"]], title)
    for ax in axes[len(top) :]:
        ax.remove()
    mistakes.suptitle(f"The {len(top)} most confident mistakes")
    return figure


def verdict(row: pd.Series, share: float) -> str:
    """``right p=0.93 · face 71%`` or ``→ wear/male/old p=0.60 · face 12%``."""
    said = "right" if row["correct"] else f"→ {class_name(row['pred'])}"
    face = "no face" if np.isnan(share) else f"face {share:.0%}"
    return f"{said} p={row['confidence']:.2f} · {face}"


def draw_view(figure: Figure, ax, view: View, title: str) -> None:
    """The map blended over the photo the network saw, the face box outlined."""
    with warnings.catch_warnings():  # an all-zero map: captum warns it normalises by ~0
        warnings.filterwarnings("ignore", "Attempting to normalize by value approximately 0")
        visualization.visualize_image_attr(
            view.cam[..., None],
            view.image,
            method="blended_heat_map",
            sign="positive",
            plt_fig_axis=(figure, ax),
            use_pyplot=False,
        )
    if view.box is not None:
        x1, y1, x2, y2 = view.box
        ax.add_patch(
            Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec="white", lw=1)
        )
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])  # captum hides the tick labels, not the ticks, which are slow to lay out
    ax.set_yticks([])


def blank(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=7, transform=ax.transAxes)
    ax.set_axis_off()


def share_figure(attention: Attention) -> Figure:
    """Histogram of the face shares by true mask state, with the uniform map's share."""
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    table = attention.table[attention.table["face_share"].notna()]
    if attention.layer is None or table.empty:
        return message_figure(figure, f"no face shares: {attention.note}")
    ax = figure.subplots()
    bins = np.linspace(0, 1, 21)
    for state in MASK_STATES:
        shares = table.loc[table["true_mask"] == state, "face_share"]
        label = f"{state} (n={len(shares)}, mean {shares.mean():.2f})"
        ax.hist(shares, bins=bins, histtype="step", linewidth=1.5, label=label)
    area = table["face_area"].mean()
    ax.axvline(area, color="grey", linestyle="--", label=f"uniform map (box area) {area:.2f}")
    mean = table["face_share"].mean()
    ax.axvline(mean, color="black", label=f"mean {mean:.2f}")
    ax.set_xlabel("share of the map's mass inside the face box")
    ax.set_ylabel("validation photos")
    ax.set_title(f"Where the network looks: {len(table)} photos with a face box")
    ax.legend(loc="upper right", fontsize=8)
    return figure
