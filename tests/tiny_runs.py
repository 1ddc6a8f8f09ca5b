"""A tiny sweep shared by the analysis, ledger and notebook tests, trained once per session.

Two finished runs that differ in head and learning rate (trained in this process, as Hydra's
multirun would name them), a run that crashed before training (only ``.hydra/``, as the app
leaves it) and one that crashed after its first epoch (``metrics.csv``, no summary). The first
also logs to TensorBoard and W&B (offline), for the tests that read what reached them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import wandb
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from mask_age_gender.data.faces.boxes import TRUE_BOXES_FILE
from mask_age_gender.train import train

from .conftest import SEARCHPATH, TINY, compose_config, shared_folder

LOGGERS = "logger=[tensorboard,wandb]"  # two options of the logger group, merged (csv kept)
LOGGED = "head=single"  # the run that logs to LOGGERS too
FINISHED = {  # the first has two epochs to draw curves of, the second is as short as it gets
    LOGGED: ["head=single", "+trainer.limit_train_batches=2", LOGGERS],
    "head=multi,optimizer.lr=0.01,trainer.max_epochs=1": [
        *("head=multi", "optimizer.lr=0.01", "trainer.max_epochs=1"),
        "+trainer.limit_train_batches=1",
    ],
}
CRASHED, CRASHED_MIDWAY = "model=test_vit", "crashed_midway"


def tiny_sweep(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep folder (built on first use in the session, by one pytest-xdist worker for
    all; read-only by convention)."""

    def make(sweep: Path) -> None:
        base = [*TINY, f"data.root={archive}", "trainer.num_sanity_val_steps=0"]
        base.append(f"data.face_boxes={archive / TRUE_BOXES_FILE}")  # the maps' boxes
        with pytest.MonkeyPatch.context() as env:
            env.setenv("WANDB_MODE", "offline")
            env.setenv("WANDB_SILENT", "true")
            env.setenv("WANDB_DIR", str(sweep.parent / "wandb_dir"))
            try:
                for name, overrides in FINISHED.items():
                    train(compose_config([*base, "error_analysis=true", *overrides], sweep / name))
            finally:
                wandb.teardown()  # its service process and threads: a pytest worker forks later
        write_started_run(sweep / CRASHED, [f"data.root={archive}", "model=test_vit"])
        write_crashed_midway(sweep / LOGGED, sweep / CRASHED_MIDWAY)

    return shared_folder(tmp_path_factory, "sweep", make)


def write_started_run(run_dir: Path, overrides: list[str]) -> None:
    """What the Hydra app leaves of a run that failed before training: ``.hydra/`` only."""
    cfg = compose_config([SEARCHPATH, *overrides], run_dir)  # a Hydra override: not saved
    hydra = run_dir / ".hydra"
    hydra.mkdir(parents=True)
    OmegaConf.save(cfg, hydra / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": HydraConfig.get()}), hydra / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(overrides), hydra / "overrides.yaml")


def write_crashed_midway(finished: Path, run_dir: Path) -> None:
    """A run killed during its second epoch: the logger's files with epoch 0 only."""
    run_dir.mkdir()
    shutil.copy(finished / "hparams.yaml", run_dir)
    metrics = pd.read_csv(finished / "metrics.csv")
    metrics[metrics["epoch"].fillna(0) == 0].to_csv(run_dir / "metrics.csv", index=False)
