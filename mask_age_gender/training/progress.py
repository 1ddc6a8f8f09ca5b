"""What a run shows while it trains: a live bar on a terminal, one line per epoch in a file.

``callbacks.progress_bar`` builds it with :func:`progress_bar`. ``style: auto`` picks Lightning's
Rich bar when stdout is a terminal, and :class:`EpochLines` when it is not (a file under SLURM,
nohup or CI): the log then holds one readable line per epoch, written through the ``logging``
module (so ``train.log`` in the run directory has them too), instead of thousands of
carriage-return updates. ``style: bar`` or ``lines`` forces one. ``callbacks.progress_bar=null``
leaves the choice to Lightning (its own bar; none with ``trainer.enable_progress_bar=false``).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

log = logging.getLogger(__name__)
STYLES = ("auto", "bar", "lines")
# the metrics of an epoch's line, in this order; absent ones (no validation that epoch) are left out
LINE_METRICS = ("train/loss", "train/f1", "val/loss", "val/f1")


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is attached to a terminal (False for a file, a pipe, a closed stream)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # None, or closed
        return False


def progress_bar(style: str = "auto", refresh_rate: int = 1) -> ProgressBar:
    """A live Rich bar (``style='bar'``, or ``auto`` with stdout on a terminal) or one log line
    per epoch (``style='lines'``, or ``auto`` with stdout redirected)."""
    if style not in STYLES:
        raise ValueError(f"callbacks.progress_bar.style must be one of {STYLES}, got {style!r}")
    if style == "auto":
        style = "bar" if is_terminal(sys.stdout) else "lines"
    return RichProgressBar(refresh_rate=refresh_rate) if style == "bar" else EpochLines()


class EpochLines(ProgressBar):
    """One log line per training epoch: its number, train and val loss and macro F1, the
    learning rate at its end, its time and the time since the fit started. No bar, no carriage
    returns. A ``ProgressBar`` so that Lightning adds no bar of its own next to it."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._fit_started = self._epoch_started = time.monotonic()
        self._pending: dict[str, Any] | None = None  # the epoch ended, its line not yet written
        self._val: dict[str, float] = {}

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_started = time.monotonic()
        if self._enabled and trainer.is_global_zero:
            log.info(
                "training from epoch %d to %d, %s batches an epoch",
                trainer.current_epoch, trainer.max_epochs - 1, self.total_train_batches,
            )  # fmt: skip

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer)
        self._epoch_started = time.monotonic()
        self._val = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:  # the module has logged this validation's scores by now
            self._val = _scalars(trainer.callback_metrics, "val/")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the module logs the epoch's train scores in its own on_train_epoch_end, which runs
        # after this hook: the line is written when they are there, as the next epoch starts
        # or training ends
        optimizers = trainer.optimizers
        self._pending = {
            "epoch": trainer.current_epoch,
            "lr": optimizers[0].param_groups[0]["lr"] if optimizers else None,
            "seconds": time.monotonic() - self._epoch_started,
            "val": self._val,
        }

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._write(trainer)

    def _write(self, trainer: pl.Trainer) -> None:
        pending, self._pending = self._pending, None
        if pending is None or not self._enabled or not trainer.is_global_zero:
            return
        metrics = {**_scalars(trainer.callback_metrics, "train/"), **pending["val"]}
        parts = [f"epoch {pending['epoch']}/{trainer.max_epochs - 1}"]
        parts += [f"{name} {metrics[name]:.4f}" for name in LINE_METRICS if name in metrics]
        if pending["lr"] is not None:
            parts.append(f"lr {pending['lr']:.3g}")
        total = timedelta(seconds=round(time.monotonic() - self._fit_started))
        parts.append(f"{pending['seconds']:.1f} s (total {total})")
        log.info("  ".join(parts))


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and v.numel() == 1}
