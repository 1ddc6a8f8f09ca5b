"""One training run: ``python -m mask_age_gender.train [overrides]`` (``-m`` for sweeps).

seed → data → model → trainer → fit → the run's results, as the run's config says. Returns the
validation macro F1, the value a sweep optimises. ``resume=RUN_DIR`` continues an interrupted
run (``training/resume.py``); ``summary.json`` says all along whether the run is running,
finished, failed or interrupted (``training/status.py``).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mask_age_gender.errors import mistakes_as_messages, user_mistake
from mask_age_gender.extras import check_command_line, check_loggers
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.resolvers import register_resolvers
from mask_age_gender.results.run_summary import finish_run
from mask_age_gender.training.build import build_datamodule, build_trainer, fitted_config
from mask_age_gender.training.resume import restore_config, resume_point
from mask_age_gender.training.run import training_run
from mask_age_gender.training.status import stop_signal

log = logging.getLogger(__name__)

FAILED_SCORE = 0.0  # what a failed job of a sweep scores: the worst macro F1


def train(cfg: DictConfig) -> float:
    """Train one model as configured and write its run directory; returns val macro F1."""
    started = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    check_loggers(config.get("logger"))  # an optional extra missing: one line, before the data
    datamodule = build_datamodule(config)  # archive read, checked, split: before any writing
    config = fitted_config(config, datamodule)  # + the normalisation and class weights it found
    module = FaceClassifier(config)
    resume = resume_point(config, run_dir)  # a new run, or a checkpoint this config continues
    trainer = build_trainer(config, run_dir)
    with training_run(run_dir, module, resume, started) as run:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume.checkpoint, weights_only=True)
        if not trainer.is_global_zero:
            return float("nan")  # rank zero alone writes the results
        summary = finish_run(trainer, datamodule, run)
    return summary["val_f1"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with mistakes_as_messages():  # a user mistake: its message, exit 1, no traceback
            try:
                return train(restore_config(cfg))
            except Exception as err:
                if not in_sweep:
                    raise
                mistake = user_mistake(err)  # one failed job scores worst; the sweep goes on
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
    with mistakes_as_messages():  # an option whose extra is missing: one line, no traceback
        check_command_line(sys.argv[1:])
    main()
