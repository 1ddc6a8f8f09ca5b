"""An option whose optional extra is not installed stops the command before training, in one
line naming the install command. Every extra's modules are made really unimportable in a fresh
process (``sys.modules[name] = None``), then the command runs as a user starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mask_age_gender.extras import EXTRAS, check_loggers, installed

from .conftest import TINY

START = """
import contextlib, io, json, runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # import NAME now raises ImportError
results = {}
for command in json.loads(sys.argv[2]):
    sys.argv, stderr = ["train", *command[1:]], io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            runpy.run_module("mask_age_gender.train", run_name="__main__")
        except SystemExit as stop:
            results[command[0]] = [stop.code, stderr.getvalue()]
print(json.dumps(results))
"""
CHOSEN = {  # extra: an option a user chooses that needs it
    "wandb": "logger=wandb",
    "tensorboard": "logger=[csv,tensorboard]",
    "optuna": "hparams_search=optuna",
    "slurm": "hydra/launcher=submitit_local",
}


def test_every_extra_has_an_option_here() -> None:
    assert set(CHOSEN) == set(EXTRAS)
    assert all(installed(extra) for extra in EXTRAS)  # the dev environment has them all


@pytest.mark.slow
def test_an_option_without_its_extra_is_one_line(archive: Path, tmp_path: Path) -> None:
    """One process with no extra importable (the core install) runs the command once per
    extra, choosing that extra's option."""
    hidden = ",".join(module for extra in sorted(EXTRAS) for module in EXTRAS[extra])
    commands = [
        [extra, *TINY, f"data.root={archive}", f"hydra.run.dir={tmp_path / extra}", option]
        for extra, option in sorted(CHOSEN.items())
    ]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", START, hidden, json.dumps(commands)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    stopped = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(stopped) == sorted(CHOSEN)  # each stopped
    for extra, (code, stderr) in stopped.items():
        expected = f"error: {CHOSEN[extra]} needs the {extra} extra: "
        expected += f"pip install 'mask_age_gender[{extra}]'"
        assert (code, stderr.strip().splitlines()) == (1, [expected]), extra
    assert list(tmp_path.iterdir()) == []  # stopped before Hydra made a run folder


def test_a_logger_chosen_in_a_config_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    loggers = {"csv": {"_target_": "pytorch_lightning.loggers.CSVLogger"}}
    check_loggers(loggers)  # the core's logger needs nothing
    loggers["wandb"] = {"_target_": "pytorch_lightning.loggers.WandbLogger"}
    with pytest.raises(ImportError, match=r"pip install 'mask_age_gender\[wandb\]'"):
        check_loggers(loggers)
