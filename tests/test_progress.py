"""What a run prints: a live bar on a terminal; in a file, a short log with one line per epoch."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from pytorch_lightning.callbacks import RichProgressBar

from mask_age_gender.training.progress import EpochLines, progress_bar

from .conftest import ROOT, TINY, compose_config

EPOCHS = 3
# Everything but the epoch lines is a fixed cost: Lightning's device banner and a warning or
# two, the model summary table (~17 lines), a start and an end line for each photo-header check
# and the mean/std, the cache and prediction lines, the closing summary (~6): about 42 lines,
# plus one per epoch (45 for 3 epochs). 60 leaves room for a few more warnings from other
# library versions; the progress updates of one bar alone, one line each, would exceed it.
MAX_LINES = 60
EPOCH_LINE = re.compile(
    rf"epoch (\d+)/{EPOCHS - 1}  train/loss \S+  train/f1 \S+  val/loss \S+  val/f1 (0|1)\.\d+  "
    r"lr \S+  \d+\.\d s \(total \d+:\d\d:\d\d\)$"
)


class FakeStream(io.StringIO):
    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.slow
def test_a_run_written_to_a_file_is_short_with_one_line_per_epoch(
    archive: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    overrides = [o for o in TINY if not o.startswith("callbacks.progress_bar")]  # the default
    overrides += [
        f"trainer.max_epochs={EPOCHS}", f"data.root={archive}", f"hydra.run.dir={run}",
        "transform.normalize=train_stats",  # the mean/std pass shows its progress too
        f"data.cache_dir={tmp_path / 'cache'}",  # not computed before by another test
    ]  # fmt: skip
    log_file = tmp_path / "out.log"
    with log_file.open("w") as out:  # stdout and stderr to one file, as SLURM or nohup do
        subprocess.run(
            [sys.executable, "-m", "mask_age_gender.train", *overrides],
            cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    text = log_file.read_bytes().decode()  # not read_text: it would turn each \r into \n
    lines = text.split("\n")
    assert "\r" not in text and "\x1b[" not in text  # no carriage returns, no cursor moves
    assert len(lines) < MAX_LINES, text
    epochs = [m for m in map(EPOCH_LINE.search, lines) if m]
    assert [int(m[1]) for m in epochs] == list(range(EPOCHS)), text
    assert "checking photo headers: done" in text and "training-set mean/std: done" in text
    assert "predicting" in text and "Predicting" not in text  # a line, not Lightning's bar
    # the epoch lines go through logging: the run directory's train.log has them too
    assert sum(bool(EPOCH_LINE.search(line)) for line in (run / "train.log").open()) == EPOCHS


def test_the_default_is_a_live_bar_on_a_terminal_and_lines_in_a_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", FakeStream(terminal=True))
    assert isinstance(progress_bar(), RichProgressBar)
    assert isinstance(progress_bar("lines"), EpochLines)  # forced
    monkeypatch.setattr(sys, "stdout", FakeStream(terminal=False))
    assert isinstance(progress_bar(), EpochLines)
    assert isinstance(progress_bar("bar"), RichProgressBar)  # forced
    monkeypatch.setattr(sys, "stdout", None)  # pythonw, a closed stream: no terminal
    assert isinstance(progress_bar(), EpochLines)
    with pytest.raises(ValueError, match="must be one of"):
        progress_bar("tqdm")


def test_under_a_real_terminal_the_config_builds_the_rich_bar(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The config's callback, instantiated as a run does, with stdout a pseudo-terminal."""
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w") as terminal:
            monkeypatch.setattr(sys, "stdout", terminal)
            bar = instantiate(compose_config([], tmp_path).callbacks.progress_bar)
    finally:
        os.close(leader)
    assert isinstance(bar, RichProgressBar)
