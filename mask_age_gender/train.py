"""One training run: ``python -m mask_age_gender.train [overrides]`` (``-m`` for sweeps).

seed → model → data (read, checked and split before anything is written) → callbacks,
loggers, trainer → fit → score the best checkpoint on validation → run-directory files.
Returns the validation macro F1, the value a sweep optimises. ``resume=RUN_DIR`` continues an
interrupted run; ``summary.json`` says all along whether the run is running, finished, failed
or interrupted (see ``runstate.py``).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.errors import mistakes_as_messages, user_mistake
from mask_age_gender.files import write_csv_atomic, write_json_atomic
from mask_age_gender.inference.checkpoints import predict_as_trained
from mask_age_gender.inference.prediction import prediction_table, write_submission
from mask_age_gender.models.metrics import score
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.resolvers import register_resolvers
from mask_age_gender.results.bootstrap import RESAMPLES, SEED, person_bootstrap
from mask_age_gender.results.run_reader import epoch_history
from mask_age_gender.results.run_report import write_error_analysis
from mask_age_gender.results.to_loggers import publish_analysis
from mask_age_gender.training.build import (
    build_callbacks,
    build_datamodule,
    check_archive_exists,
    hydra_choices,
)
from mask_age_gender.training.callbacks import AtomicCheckpointIO, run_callbacks
from mask_age_gender.training.distributed import ddp_job
from mask_age_gender.training.resume import (
    check_resumable,
    checkpoint_step,
    earlier_metrics,
    restore_config,
    restore_metrics,
    resume_checkpoint,
)
from mask_age_gender.training.status import check_room, stop_signal, track_status

log = logging.getLogger(__name__)


FAILED_SCORE = 0.0  # the worst macro F1


def train(cfg: DictConfig) -> float:
    """Train one model as configured and write its run directory; returns val macro F1."""
    started = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    check_archive_exists(Path(cfg.data.root))
    torch.set_flush_denormal(True)  # denormal weights late in training slow CPU steps manifold
    pl.seed_everything(cfg.seed, workers=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    resumed_from = resume_checkpoint(cfg.get("resume"), cfg.get("ckpt_path"))
    datamodule = build_datamodule(config)
    if resumed_from is not None:
        check_resumable(resumed_from, config)
    start_step = checkpoint_step(resumed_from)  # read now: the fit overwrites last.ckpt
    module = FaceClassifier(config)  # config now holds the normalisation and class weights used
    check_room(run_dir, module)
    callbacks = build_callbacks(config.get("callbacks") or {}) + run_callbacks(run_dir)
    earlier = earlier_metrics(run_dir, resumed_from)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()]
    )
    with ddp_job(run_dir), track_status(run_dir, resumed_from):
        fit_started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=resumed_from, weights_only=True)
        fit_seconds = time.perf_counter() - fit_started
        if not trainer.is_global_zero:
            return float("nan")
        restore_metrics(run_dir, earlier)
        summary = write_results(trainer, module, datamodule, run_dir)
    # photos this process trained (a resumed run: since its checkpoint) per second of fit,
    # validation passes included
    steps = trainer.global_step - start_step
    summary["fit_images"] = steps * trainer.accumulate_grad_batches * datamodule.batch_size
    summary["fit_images_per_s"] = round(summary["fit_images"] / fit_seconds, 2)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary |= {"status": "finished", **hydra_choices()}
    if resumed_from is not None:
        summary["resumed_from"] = str(resumed_from)
    write_json_atomic(run_dir / "summary.json", summary)
    if cfg.get("error_analysis", True):
        write_error_analysis(run_dir)
    publish_analysis(trainer.loggers, run_dir, summary)  # W&B, TensorBoard: scores, figures
    log.info("val macro F1 %.4f (best epoch %d)", summary["val_f1"], summary["best_epoch"])
    log.info("run directory: %s", run_dir.resolve())
    for name in ("summary.json", "val_predictions.csv", "submission.csv", "checkpoints/best.ckpt"):
        if (run_dir / name).exists():
            log.info("  %s", run_dir.resolve() / name)
    return summary["val_f1"]


def write_results(
    trainer: pl.Trainer, module: FaceClassifier, datamodule: FaceDataModule, run_dir: Path
) -> dict[str, Any]:
    """Score the best checkpoint on validation as validation ran (the Trainer's precision and
    device), write its predictions and the submission."""
    best_ckpt = Path(trainer.checkpoint_callback.best_model_path)
    state = torch.load(best_ckpt, map_location=module.device, weights_only=True)
    module.load_state_dict(state["state_dict"])
    val = datamodule.val_table
    loader = datamodule.val_dataloader(shard=False)  # every photo, whatever the processes
    probs = predict_as_trained(trainer, module, loader)
    preds = probs.argmax(axis=1)
    write_csv_atomic(run_dir / "val_predictions.csv", prediction_table(val, preds, probs))
    eval_loader = datamodule.eval_dataloader()
    if eval_loader is not None:
        eval_probs = predict_as_trained(trainer, module, eval_loader)
        labels = eval_probs.argmax(axis=1)
        write_submission(run_dir / "submission.csv", datamodule.eval_table["image_id"], labels)
    history = epoch_history(run_dir / "metrics.csv")
    best_epoch = int(history["val/f1"].idxmax())
    at_best = history.loc[best_epoch]
    scores = score(preds, val["label"])
    # 95 % intervals over which people validate (not over training noise), seeded
    intervals = person_bootstrap(val["label"], preds, val["person"], RESAMPLES, SEED)
    return {
        **{f"val_{name}": round(value, 6) for name, value in scores.items()},
        **{
            f"val_{name}_ci_{end}": round(bound, 6)
            for name, bounds in intervals.items()
            for end, bound in zip(("low", "high"), bounds, strict=True)
        },
        "val_ci_resamples": RESAMPLES,
        "val_ci_seed": SEED,
        "val_loss": float(at_best["val/loss"]),
        "train_f1": float(at_best.get("train/f1", np.nan)),
        "train_acc": float(at_best.get("train/acc", np.nan)),
        "train_loss": float(at_best.get("train/loss", np.nan)),
        "best_epoch": best_epoch,
        "epochs_run": int(trainer.current_epoch),
        **datamodule.summary(),
        "best_ckpt": str(best_ckpt.resolve().relative_to(run_dir.resolve())),
        "last_ckpt": "checkpoints/last.ckpt",
    }


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        with mistakes_as_messages():  # a user mistake: its message, exit 1, no traceback
            cfg = restore_config(cfg)
            if HydraConfig.get().mode != RunMode.MULTIRUN:
                return train(cfg)
            try:
                return train(cfg)
            except Exception as err:  # one failed job of a sweep scores worst; the sweep goes on
                mistake = user_mistake(err)  # told by its message alone
                log.error(
                    "this run failed%s; the sweep continues and scores it %s",
                    "" if mistake is None else f": {mistake}",
                    FAILED_SCORE,
                    exc_info=mistake is None,
                )
                return FAILED_SCORE
    except SIGTERMException:  # SIGTERM or Ctrl-C: the whole sweep stops, with 143 or 130
        sys.exit(128 + stop_signal())


if __name__ == "__main__":
    register_resolvers()  # before Hydra composes: the configs use them
    main()
