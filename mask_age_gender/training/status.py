"""A run's status on disk, and room for its checkpoints.

``summary.json`` always says where a run stands: ``running`` from the moment training starts,
then ``finished`` (with the scores), ``failed`` (with the reason) or ``interrupted`` (SIGTERM or
Ctrl-C: ``checkpoints/last.ckpt`` was saved, ``resume=RUN_DIR`` continues). A run killed
outright (SIGKILL, power) stays ``running`` and resumes from the last periodic ``last.ckpt``.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mask_age_gender.errors import UserMistake
from mask_age_gender.files import LAST_CKPT, SUMMARY, write_json_atomic

log = logging.getLogger(__name__)


_stopped_by = {"signal": signal.SIGTERM}  # the signal that stopped training cleanly


def stop_signal() -> int:
    """SIGTERM, or SIGINT when Ctrl-C stopped the run: the exit status is 128 + it."""
    return _stopped_by["signal"]


def record_stop(signum: signal.Signals) -> None:
    """Which signal is stopping training: SIGINT from Ctrl-C, else SIGTERM."""
    _stopped_by["signal"] = signum


CHECKPOINTS_KEPT = 3  # best.ckpt, last.ckpt and the new last.ckpt while it replaces the old one


class NotEnoughRoom(UserMistake, OSError):
    """The run directory cannot be written, or cannot hold the checkpoints."""


def check_room(run_dir: Path, module: torch.nn.Module) -> None:
    """The run directory is writable and has room for the checkpoints (weights and optimizer
    state, estimated as 3 × the weights: Adam keeps two moments per weight)."""
    folder = run_dir / LAST_CKPT.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise NotEnoughRoom(f"run directory {run_dir} is not writable: {err}") from err
    weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    needed = CHECKPOINTS_KEPT * 3 * weights
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NotEnoughRoom(
            f"run directory {run_dir} has {free / 2**20:.1f} MiB free; the checkpoints need about "
            f"{needed / 2**20:.1f} MiB ({CHECKPOINTS_KEPT} files of about "
            f"{3 * weights / 2**20:.1f} MiB). Free some space or set hydra.run.dir elsewhere."
        )


def write_status(run_dir: Path, status: str, **details: Any) -> None:
    """``summary.json`` of an unfinished run: its status and why (rank zero only)."""
    if rank_zero_only.rank == 0:
        write_json_atomic(run_dir / SUMMARY, {"status": status, **details})


@contextmanager
def track_status(run_dir: Path, resumed_from: Path | None) -> Iterator[None]:
    """``running`` while the block runs; ``failed`` or ``interrupted`` if it raises."""
    since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    resumed = {"resumed_from": str(resumed_from)} if resumed_from else {}
    write_status(run_dir, "running", started=since, **resumed)
    try:
        yield
    except (KeyboardInterrupt, SIGTERMException) as err:
        reason = "SIGINT" if isinstance(err, KeyboardInterrupt) else stop_signal().name
        write_status(
            run_dir, "interrupted", reason=reason, started=since, **resumed,
            last_ckpt=str(LAST_CKPT), resume=f"resume={run_dir}",
        )  # fmt: skip
        log.warning("interrupted (%s); continue with resume=%s", reason, run_dir)
        raise
    except Exception as err:
        write_status(run_dir, "failed", reason=f"{type(err).__name__}: {err}", started=since)
        raise
