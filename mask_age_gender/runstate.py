"""A run's life on disk: its status, resuming it, stopping it cleanly, room for its checkpoints.

``summary.json`` always says where a run stands: ``running`` from the moment training starts,
then ``finished`` (with the scores), ``failed`` (with the reason) or ``interrupted`` (SIGTERM or
Ctrl-C: ``checkpoints/last.ckpt`` was saved, ``resume=RUN_DIR`` continues). A run killed
outright (SIGKILL, power) stays ``running`` and resumes from the last periodic ``last.ckpt``.
"""

from __future__ import annotations

import io
import logging
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from lightning_fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mask_age_gender.files import write_bytes_atomic, write_csv_atomic, write_json_atomic
from mask_age_gender.runs import METRICS

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
LAST_CKPT = Path("checkpoints") / "last.ckpt"
CHECKPOINTS_KEPT = 3  # best.ckpt, last.ckpt and the new last.ckpt while it replaces the old one
# Config keys a resumed run may change: where things are, how long to go on, what is logged.
RESUMABLE_CHANGES = (
    "resume", "ckpt_path", "paths.", "data.root", "data.num_workers", "data.cache_dir",
    "data.cache", "data.cache_max_gb", "data.normalize_on", "data.pin_memory",
    "trainer.max_epochs", "trainer.max_time", "trainer.log_every_n_steps",
    "trainer.enable_progress_bar", "logger.", "callbacks.progress_bar.", "callbacks.checkpoint.",
    "callbacks.early_stopping.patience", "callbacks.lr_monitor.", "model.compile",
    "model.channels_last",
)  # fmt: skip


_stopped_by = {"signal": signal.SIGTERM}  # the signal that stopped training cleanly


def stop_signal() -> int:
    """SIGTERM, or SIGINT when Ctrl-C stopped the run: the exit status is 128 + it."""
    return _stopped_by["signal"]


class ResumeRefused(ValueError):
    """A resume whose config would change the experiment."""


class NotEnoughRoom(OSError):
    """The run directory cannot be written, or cannot hold the checkpoints."""


def resume_dir(resume: str | None, ckpt_path: str | None, default: str) -> str:
    """``hydra.run.dir``: the run being resumed (``resume=DIR``, or the run directory holding
    ``ckpt_path=DIR/checkpoints/X.ckpt``), else a new one."""
    if resume:
        return str(resume)
    if ckpt_path and Path(ckpt_path).parent.name == "checkpoints":
        return str(Path(ckpt_path).parent.parent)
    return default


def hydra_subdir(resume: str | None, ckpt_path: str | None) -> str:
    """``hydra.output_subdir``: a resumed run keeps the ``.hydra/`` of its first start (the
    record of the experiment) and writes the resuming command's beside it."""
    return ".hydra" if resume_dir(resume, ckpt_path, "") == "" else ".hydra-resumed"


def restore_config(cfg: DictConfig) -> DictConfig:
    """For ``resume=DIR`` (or ``ckpt_path=DIR/checkpoints/…``): the config the run started
    with, composed again from its ``.hydra/overrides.yaml`` with this command's overrides on
    top, so ``resume=DIR`` alone continues the same experiment. Other runs: ``cfg`` as is."""
    run = resume_dir(cfg.get("resume"), cfg.get("ckpt_path"), "")
    first = Path(run) / ".hydra" / "overrides.yaml"
    if not run or not first.is_file() or not HydraConfig.initialized():
        return cfg
    now = list(HydraConfig.get().overrides.task)
    given = {override_key(o) for o in now}
    saved = [o for o in OmegaConf.load(first) if override_key(o) not in given]
    log.info("resuming %s with its first start's overrides: %s", run, " ".join(saved) or "none")
    return compose(config_name=HydraConfig.get().job.config_name, overrides=saved + now)


def override_key(override: str) -> str:
    """``model`` of ``model=x``, ``trainer.max_epochs`` of ``+trainer.max_epochs=3``."""
    return override.split("=", 1)[0].lstrip("+~")


def resume_checkpoint(resume: str | None, ckpt_path: str | None) -> Path | None:
    """The checkpoint to continue from, or None for a new run."""
    if not resume and not ckpt_path:
        return None
    ckpt = Path(ckpt_path) if ckpt_path else Path(resume) / LAST_CKPT
    if not ckpt.is_file():
        raise FileNotFoundError(f"nothing to resume: {ckpt} not found")
    return ckpt


def check_resumable(ckpt: Path, config: dict[str, Any]) -> None:
    """Refuse to resume with a config that changes the experiment the checkpoint belongs to."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    before = flatten(saved["hyper_parameters"]["config"])
    now = flatten(config)
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


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat |= flatten(value, f"{prefix}{key}.")
    return flat


def earlier_metrics(run_dir: Path, resumed_from: Path | None) -> pd.DataFrame | None:
    """The ``metrics.csv`` rows a resumed run had, read before the CSV logger (which starts
    the file afresh in a folder it finds used) deletes them."""
    path = run_dir / METRICS
    return pd.read_csv(path) if resumed_from is not None and path.is_file() else None


def restore_metrics(run_dir: Path, earlier: pd.DataFrame | None) -> None:
    """Put back the rows of the epochs before the first one the resumed run logged itself."""
    if earlier is None or earlier.empty:
        return
    path = run_dir / METRICS
    now = pd.read_csv(path) if path.is_file() else earlier.iloc[:0]
    first = now["epoch"].min() if len(now) else np.inf
    rows = pd.concat([earlier[earlier["epoch"] < first], now], ignore_index=True)
    write_csv_atomic(path, rows)


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


class SaveOnInterrupt(pl.Callback):
    """SIGTERM (what SLURM sends before pre-emption) and Ctrl-C stop training after the current
    batch and save ``last.ckpt``; a second Ctrl-C stops at once."""

    def __init__(self, run_dir: Path):
        self.last_ckpt = run_dir / LAST_CKPT
        self._previous_sigint: Any = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        def stop_after_this_batch(signum: int, frame: Any) -> None:
            if trainer.received_sigterm:  # pressed twice
                raise KeyboardInterrupt
            log.warning("Ctrl-C: stopping after this batch (press again to stop now)")
            _stopped_by["signal"] = signal.SIGINT
            trainer._signal_connector.received_sigterm = True  # Lightning then stops cleanly

        _stopped_by["signal"] = signal.SIGTERM
        if _is_main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, stop_after_this_batch)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_sigint()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            trainer.save_checkpoint(self.last_ckpt)
            log.warning("saved %s", self.last_ckpt)

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and _is_main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class RandomState(pl.Callback):
    """The global RNGs (torch, numpy, random) travel in checkpoints: mixing and dropout draw
    from them. Restored just before the first batch of a resumed run."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class FlushLogsOnCheckpoint(pl.Callback):
    """The loggers write what they hold whenever a checkpoint is saved, so a run resumed from
    it has every epoch before it in ``metrics.csv``."""

    def on_save_checkpoint(self, trainer: pl.Trainer, *args: Any) -> None:
        for logger in trainer.loggers:
            logger.save()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written whole or not at all (temp file + rename): a run killed while saving
    keeps its previous ``last.ckpt``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getvalue())


def run_callbacks(run_dir: Path) -> list[pl.Callback]:
    """The callbacks every run gets, whatever ``callbacks=`` says."""
    return [SaveOnInterrupt(run_dir), RandomState(), FlushLogsOnCheckpoint()]
