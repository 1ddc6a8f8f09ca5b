"""A training run around its fit: what must hold before it starts, what the run directory says
while it goes on, and what the after-fit work needs to know of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mask_age_gender.training.distributed import ddp_job
from mask_age_gender.training.resume import ResumePoint
from mask_age_gender.training.status import check_room, track_status


@dataclass
class TrainingRun:
    """A run in progress: its directory, where it resumed from and its clock."""

    run_dir: Path
    resume: ResumePoint
    started: float  # time.perf_counter() when train() started
    fit_started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        """Since the run started: reading the data, the fit, the results so far."""
        return time.perf_counter() - self.started

    def fit_seconds(self) -> float:
        """Since the fit started (validation passes included)."""
        return time.perf_counter() - self.fit_started


@contextmanager
def training_run(
    run_dir: Path, module: torch.nn.Module, resume: ResumePoint, started: float
) -> Iterator[TrainingRun]:
    """Around the fit and its results: the run directory has room for the checkpoints, a sweep
    job's DDP processes run this job alone, and ``summary.json`` says ``running`` until the
    results mark it ``finished`` (``failed`` or ``interrupted`` if the block raises)."""
    check_room(run_dir, module)
    with ddp_job(run_dir), track_status(run_dir, resume.checkpoint):
        yield TrainingRun(run_dir, resume, started)
