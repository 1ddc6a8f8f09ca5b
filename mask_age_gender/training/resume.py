"""Resuming a run: its checkpoint, its first start's config, the metrics it had logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mask_age_gender.config import flatten_config
from mask_age_gender.errors import UserMistake
from mask_age_gender.files import LAST_CKPT, METRICS, write_csv_atomic
from mask_age_gender.resolvers import resume_dir

log = logging.getLogger(__name__)


# Config keys a resumed run may change: where things are, how long to go on, what is logged.
RESUMABLE_CHANGES = (
    "resume", "ckpt_path", "paths.", "data.root", "data.num_workers", "data.cache_dir",
    "data.cache", "data.cache_max_gb", "data.normalize_on", "data.pin_memory",
    "trainer.max_epochs", "trainer.max_time", "trainer.log_every_n_steps",
    "trainer.enable_progress_bar", "logger.", "callbacks.progress_bar.", "callbacks.periodic_last.",
    "callbacks.early_stopping.patience", "callbacks.lr_monitor.", "model.compile",
    "model.channels_last",
)  # fmt: skip


class ResumeRefused(UserMistake, ValueError):
    """A resume whose config would change the experiment."""


def restore_config(cfg: DictConfig) -> DictConfig:
    """For ``resume=DIR`` (or ``ckpt_path=DIR/checkpoints/…``): the config the run started
    with, composed again from its ``.hydra/overrides.yaml`` with this command's overrides on
    top, so ``resume=DIR`` alone continues the same experiment. Other runs: ``cfg`` as is."""
    run = resume_dir(cfg.get("resume"), cfg.get("ckpt_path"), "")
    first = Path(run) / ".hydra" / "overrides.yaml"
    if not run or not first.is_file() or not HydraConfig.initialized():
        return cfg
    now = list(HydraConfig.get().overrides.task)
    parse = OverridesParser.create().parse_overrides  # Hydra's own reading of a command line
    given = {o.key_or_group for o in parse(now)}
    saved = [
        o.input_line for o in parse(list(OmegaConf.load(first))) if o.key_or_group not in given
    ]
    log.info("resuming %s with its first start's overrides: %s", run, " ".join(saved) or "none")
    return compose(config_name=HydraConfig.get().job.config_name, overrides=saved + now)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run starts: from scratch (no checkpoint) or from a checkpoint, with the optimizer
    steps it had taken and the ``metrics.csv`` rows logged before it (the CSV logger starts the
    file afresh in a folder it finds used, so they are read before the fit)."""

    checkpoint: Path | None = None
    step: int = 0
    earlier_metrics: pd.DataFrame | None = None

    def restore_metrics(self, run_dir: Path) -> None:
        """Put back the rows of the epochs before the first one the resumed run logged itself."""
        earlier = self.earlier_metrics
        if earlier is None or earlier.empty:
            return
        path = run_dir / METRICS
        now = pd.read_csv(path) if path.is_file() else earlier.iloc[:0]
        first = now["epoch"].min() if len(now) else np.inf
        rows = pd.concat([earlier[earlier["epoch"] < first], now], ignore_index=True)
        write_csv_atomic(path, rows)


def resume_point(config: dict[str, Any], run_dir: Path) -> ResumePoint:
    """For ``resume=DIR`` or ``ckpt_path=``: the checkpoint, refused if ``config`` changes the
    experiment it belongs to; otherwise a new run's (empty) resume point."""
    resume, ckpt_path = config.get("resume"), config.get("ckpt_path")
    if not resume and not ckpt_path:
        return ResumePoint()
    ckpt = Path(ckpt_path) if ckpt_path else Path(resume) / LAST_CKPT
    if not ckpt.is_file():
        raise FileNotFoundError(f"nothing to resume: {ckpt} not found")
    check_resumable(ckpt, config)
    saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    metrics = run_dir / METRICS
    earlier = pd.read_csv(metrics) if metrics.is_file() else None
    return ResumePoint(ckpt, int(saved["global_step"]), earlier)


def check_resumable(ckpt: Path, config: dict[str, Any]) -> None:
    """Refuse to resume with a config that changes the experiment the checkpoint belongs to."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    before = flatten_config(saved["hyper_parameters"]["config"])
    now = flatten_config(config)
    changed = [
        f"  {key}: {before.get(key, '-')!r} in the checkpoint, {now.get(key, '-')!r} now"
        for key in sorted(before.keys() | now.keys())
        if before.get(key) != now.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]
    if changed:
        raise ResumeRefused(
            f"cannot resume from {ckpt}: these overrides change the experiment\n"
            + "\n".join(changed)
            + "\nstart a new run for them (or drop them to resume)"
        )
