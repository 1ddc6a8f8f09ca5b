"""The callbacks and checkpoint plugin every run gets: stopping cleanly on SIGTERM or Ctrl-C,
the random state in checkpoints, logs flushed with each checkpoint, checkpoints written whole."""

from __future__ import annotations

import io
import logging
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mask_age_gender.files import LAST_CKPT, write_bytes_atomic
from mask_age_gender.training.status import record_stop

log = logging.getLogger(__name__)


class SaveOnInterrupt(pl.Callback):
    """SIGTERM (what SLURM sends before pre-emption) and Ctrl-C stop training after the current
    batch and save ``last.ckpt``; a second Ctrl-C stops at once.

    Not Lightning's ``OnExceptionCheckpoint``: that one saves on every exception (a non-finite
    loss or a bug too, whose state should not be resumed) into a file it removes at teardown;
    this one saves on a stop signal only, as the ``last.ckpt`` that ``resume=RUN_DIR`` reads,
    and lets Ctrl-C finish the batch."""

    def __init__(self, run_dir: Path):
        self.last_ckpt = run_dir / LAST_CKPT
        self._previous_sigint: Any = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        def stop_after_this_batch(signum: int, frame: Any) -> None:
            if trainer.received_sigterm or not _handled(signal.SIGTERM):  # twice, or too early
                raise KeyboardInterrupt
            log.warning("Ctrl-C: stopping after this batch (press again to stop now)")
            record_stop(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)  # Lightning's own handler: it stops cleanly

        record_stop(signal.SIGTERM)
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


def _handled(signum: signal.Signals) -> bool:
    """Whether a handler catches the signal (Lightning's SIGTERM one is set once fit starts)."""
    return signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None)


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
    keeps its previous ``last.ckpt``.

    Lightning's own save (``lightning_fabric``'s ``_atomic_save``, through fsspec) writes the temp
    file in the system's temp folder and moves it: where that is another file system than the
    run's (``/tmp`` on a node, runs on shared storage) the move is a copy, not atomic. Here the
    temp file sits beside the target, so the rename is."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getvalue())


def run_callbacks(run_dir: Path) -> list[pl.Callback]:
    """The callbacks every run gets, whatever ``callbacks=`` says."""
    return [SaveOnInterrupt(run_dir), RandomState(), FlushLogsOnCheckpoint()]
