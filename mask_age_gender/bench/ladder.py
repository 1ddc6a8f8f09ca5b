"""The batch-size ladder: model-only and training images/s, their ratio and the training's peak
GPU memory for every (model, batch size, compile mode) asked, one row each:

    python -m mask_age_gender.bench --model resnet50,efficientnet_b0 --batch-size 32,64,128,256 \
        --compile none,reduce-overhead --set trainer=gpu

A row whose setting fails (a compile mode this machine cannot run) keeps the error instead of
figures; the other rows are still measured.
"""

from __future__ import annotations

import gc
import logging
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import torch

from mask_age_gender.bench.build import Settings, prepared
from mask_age_gender.bench.loops import model_only
from mask_age_gender.bench.training import run_training

log = logging.getLogger("mask_age_gender.bench")
ERROR_CHARS = 2000  # the end of a failure's message, where the cause is
FIGURES = ("model_only_img_s", "train_img_s", "train_peak_gpu_mb")


class Case(NamedTuple):
    """One row of the ladder: a model, a batch size and a compile mode (None: the config's)."""

    model: str
    batch_size: int
    compile: str | None


def measure_case(settings: Settings, repeats: int) -> dict[str, Any]:
    """Model only (in this process) and training (a fresh one), ``repeats`` rounds in turn; each
    figure's best round, as the single run keeps it, and every round."""
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
        config, datamodule = prepared(settings, Path(tmp))
        for _ in range(repeats):
            figures = {"model_only_img_s": model_only(config, datamodule, settings)}
            release_memory()
            rounds.append(figures | run_training(settings, "train_only"))
    best = {key: best_of(r[key] for r in rounds) for key in FIGURES}
    best["train/model_only"] = round(best["train_img_s"] / best["model_only_img_s"], 4)
    return best | ({"rounds": rounds} if repeats > 1 else {})


def ladder_row(case: Case, settings: Settings, repeats: int) -> dict[str, Any]:
    """One row: the case, its figures or, when it fails, the error and null figures."""
    row: dict[str, Any] = case._asdict()
    log.info("ladder: %s, batch %d, compile %s", *case)
    try:
        figures = measure_case(settings, repeats)
    except Exception as err:  # noqa: BLE001 -- one setting failing must not lose the others
        message = f"{type(err).__name__}: {err}"
        log.warning("ladder row %s failed: %s", case, message[-ERROR_CHARS:])
        figures = dict.fromkeys((*FIGURES, "train/model_only")) | {"error": message[-ERROR_CHARS:]}
    release_memory()
    return row | {"error": None} | figures


def release_memory() -> None:
    """Drop compiled graphs and cached GPU blocks, so a row starts as a fresh process would."""
    torch.compiler.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def best_of(values: Any) -> float | None:
    """The largest figure (noise only slows a run down); None where none was measured."""
    present = [v for v in values if v is not None]
    return round(max(present), 2) if present else None


def ladder_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table (for docs/speed.md)."""
    lines = [
        "| model | batch | compile | model only img/s | train img/s | train/model only "
        "| peak GPU MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mode = row["compile"] or "(config)"
        if row["error"]:
            lines.append(
                f"| {row['model']} | {row['batch_size']} | {mode} | failed: "
                f"{row['error'].splitlines()[-1][:80]} | | | |"
            )
            continue
        peak = "n/a" if row["train_peak_gpu_mb"] is None else f"{row['train_peak_gpu_mb']:.0f}"
        lines.append(
            f"| {row['model']} | {row['batch_size']} | {mode} | {row['model_only_img_s']:.1f} "
            f"| {row['train_img_s']:.1f} | {row['train/model_only']:.2f} | {peak} |"
        )
    return "\n".join(lines)
