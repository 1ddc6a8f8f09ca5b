"""What a finished fit leaves in its run directory: the best checkpoint's predictions, the
submission, ``summary.json``, the error analysis, and the same scores and figures in the
loggers (W&B, TensorBoard)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl

from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.files import (
    BEST_CKPT,
    LAST_CKPT,
    METRICS,
    PREDICTIONS,
    SUBMISSION,
    SUMMARY,
    write_csv_atomic,
    write_json_atomic,
)
from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.people import split_outputs
from mask_age_gender.inference.prediction import prediction_table, write_submission
from mask_age_gender.inference.proba import predict_as_trained
from mask_age_gender.models.scores import score
from mask_age_gender.results.bootstrap import RESAMPLES, SEED, person_bootstrap, summary_keys
from mask_age_gender.results.people_gain import people_scores
from mask_age_gender.results.run_reader import epoch_history, read_summary
from mask_age_gender.results.run_report import write_error_analysis
from mask_age_gender.results.to_loggers import publish_analysis
from mask_age_gender.training.build import hydra_choices
from mask_age_gender.training.run import TrainingRun

log = logging.getLogger(__name__)


def finish_run(trainer: pl.Trainer, datamodule: FaceDataModule, run: TrainingRun) -> dict[str, Any]:
    """Score the best checkpoint and write everything a finished run holds; returns the summary.

    Predictions run as validation ran (the Trainer's precision and device), on every
    validation photo whatever the number of processes; rank zero calls this alone.
    """
    run_dir = run.run_dir
    fit = throughput(trainer, datamodule, run)  # first: the fit's clock stops here
    run.resume.restore_metrics(run_dir)  # before the best epoch is read from metrics.csv
    best_ckpt = Path(trainer.checkpoint_callback.best_model_path)  # the callback knows the best
    model = load_classifier(best_ckpt)
    summary = {
        **best_scores(trainer, model, datamodule, run_dir),
        **datamodule.summary(),
        "best_ckpt": str(best_ckpt.resolve().relative_to(run_dir.resolve())),
        "last_ckpt": str(LAST_CKPT),
        **fit,
        "seconds": round(run.seconds(), 1),
        "status": "finished",
        **hydra_choices(),
    }
    if run.resume.checkpoint is not None:
        summary["resumed_from"] = str(run.resume.checkpoint)
    write_json_atomic(run_dir / SUMMARY, summary)
    if model.hparams.config.get("error_analysis", True):
        write_error_analysis(run_dir, device=trainer.strategy.root_device)
        summary = read_summary(run_dir)  # with the class-activation maps' val_cam_* keys
    publish_analysis(trainer.loggers, run_dir, summary)
    log.info("val macro F1 %.4f (best epoch %d)", summary["val_f1"], summary["best_epoch"])
    log.info("run directory: %s", run_dir.resolve())
    for name in (SUMMARY, PREDICTIONS, SUBMISSION, BEST_CKPT):
        if (run_dir / name).exists():
            log.info("  %s", run_dir.resolve() / name)
    return summary


def best_scores(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: FaceDataModule, run_dir: Path
) -> dict[str, Any]:
    """The best checkpoint's validation scores with their person-level intervals, what
    agreeing within people gains (``people_gain.py``), and the logged values at its epoch;
    writes its validation predictions (with the groups found) and the submission."""
    val = datamodule.val_table
    loader = datamodule.val_dataloader(shard=False)
    probs, embedded = split_outputs(predict_as_trained(trainer, model, loader, embed=True))
    preds = probs.argmax(axis=1)
    people, groups = people_scores(probs, embedded, val["label"].to_numpy(), val["person"])
    table = prediction_table(val, preds, probs).assign(group=groups)  # the groups found
    write_csv_atomic(run_dir / PREDICTIONS, table)
    eval_loader = datamodule.eval_dataloader()
    if eval_loader is not None:
        labels = predict_as_trained(trainer, model, eval_loader).argmax(axis=1)
        write_submission(run_dir / SUBMISSION, datamodule.eval_table["image_id"], labels)
    history = epoch_history(run_dir / METRICS)
    best_epoch = int(history["val/f1"].idxmax())
    at_best = history.loc[best_epoch]
    # 95 % intervals over which people validate (not over training noise), seeded: computed
    # here alone, the report and the ledger read them from the summary
    intervals = person_bootstrap(val["label"], preds, val["person"], RESAMPLES, SEED)
    return {
        **{f"val_{name}": round(value, 6) for name, value in score(preds, val["label"]).items()},
        **summary_keys(intervals, RESAMPLES, SEED),
        **people,
        "val_loss": float(at_best["val/loss"]),
        "train_f1": float(at_best.get("train/f1", np.nan)),
        "train_acc": float(at_best.get("train/acc", np.nan)),
        "train_loss": float(at_best.get("train/loss", np.nan)),
        "best_epoch": best_epoch,
        "epochs_run": int(trainer.current_epoch),
    }


def throughput(trainer: pl.Trainer, datamodule: FaceDataModule, run: TrainingRun) -> dict:
    """Photos this process trained (a resumed run: since its checkpoint) per second of fit,
    validation passes included. (Lightning's ThroughputMonitor would synchronise the GPU at
    every step to time it; one figure per run needs no more than the wall clock.)"""
    steps = trainer.global_step - run.resume.step
    images = steps * trainer.accumulate_grad_batches * datamodule.batch_size
    return {"fit_images": images, "fit_images_per_s": round(images / run.fit_seconds(), 2)}
