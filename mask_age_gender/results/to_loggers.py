"""A finished run's scores and error analysis handed to the experiment trackers it logged to.

``publish_analysis(loggers, run_dir, summary)`` gives each logger of the run its share of what
is already in the run directory (``summary.json``'s scores, ``report.md``, ``errors.json`` and
the PNGs of ``run_report.FIGURES``; whatever of the analysis exists, so
``error_analysis=false`` publishes the scores alone):

- W&B: the scores in the run summary, each figure as an image, the per-class table as a
  ``wandb.Table``, ``report.md`` as a file of the run; then the run is finished, so an offline
  run's folder is complete.
- TensorBoard: each figure as an image, the run's hyperparameters with the scores in the HParams
  view, ``report.md`` as text; then the event files are flushed and closed.

Other loggers (the CSV one) get nothing more.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger

from mask_age_gender.files import ERRORS, REPORT
from mask_age_gender.results import ledger
from mask_age_gender.results.run_report import FIGURES

# summary.json keys that go to the trackers as the run's final scores: the ledger's, but the
# training-set ones (the trackers have their curves)
SCORES = tuple(key for key in ledger.SCORES if not key.startswith("train_"))
FIGURE_TAG = "analysis/{}"  # the tag of a figure: analysis/confusion, analysis/curves, …


def publish_analysis(loggers: Iterable[Logger], run_dir: Path, summary: dict[str, Any]) -> None:
    """Give every W&B and TensorBoard logger the run's scores and analysis, then close it."""
    scores = {key: summary[key] for key in SCORES if summary.get(key) is not None}
    figures = {Path(n).stem: run_dir / n for n in FIGURES if (run_dir / n).is_file()}
    report = run_dir / REPORT
    errors = run_dir / ERRORS
    per_class = json.loads(errors.read_text())["per_class"] if errors.is_file() else None
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            to_wandb(logger, scores, figures, per_class, report)
        elif isinstance(logger, TensorBoardLogger):
            to_tensorboard(logger, scores, figures, report)


def to_wandb(
    logger: WandbLogger,
    scores: dict[str, Any],
    figures: dict[str, Path],
    per_class: list[dict[str, Any]] | None,
    report: Path,
) -> None:
    """Scores in the run summary, figures as images, the per-class table, report.md; finish."""
    import wandb

    run = logger.experiment
    run.summary.update(scores)
    media: dict[str, Any] = {FIGURE_TAG.format(n): wandb.Image(str(p)) for n, p in figures.items()}
    if per_class:
        columns = list(per_class[0])
        media["analysis/per_class"] = wandb.Table(
            columns=columns, data=[[row[c] for c in columns] for row in per_class]
        )
    if media:
        run.log(media, commit=True)
    if report.is_file():  # a copy in the run's files/ (save() alone would link it)
        run.save(shutil.copy(report, run.dir), base_path=run.dir, policy="now")
    run.finish()  # offline: the run's .wandb log complete, the summary and exit in it


def to_tensorboard(
    logger: TensorBoardLogger, scores: dict[str, Any], figures: dict[str, Path], report: Path
) -> None:
    """Figures as images, hyperparameters with the scores (HParams view), report.md as text."""
    writer = logger.experiment
    step = int(scores.get("best_epoch", 0))
    for name, path in figures.items():
        image = np.asarray(Image.open(path).convert("RGB"))
        writer.add_image(FIGURE_TAG.format(name), image, step, dataformats="HWC")
    if report.is_file():
        writer.add_text("analysis/report", report.read_text(), step)
    logger.log_hyperparams(logger.hparams, metrics=scores)  # the HParams view, to compare runs
    logger.finalize("success")  # flush and close the event file
