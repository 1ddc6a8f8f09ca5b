"""An option whose optional extra is not installed stops the command before training, in one
line naming the install command (the command itself, with no extra importable, is in
test_refusals.py)."""

from __future__ import annotations

import sys

import pytest

from mask_age_gender.extras import EXTRAS, check_loggers, installed

from .test_refusals import CHOSEN


def test_every_extra_has_an_option_here() -> None:
    assert set(CHOSEN) == set(EXTRAS)
    assert all(installed(extra) for extra in EXTRAS)  # the dev environment has them all


def test_a_logger_chosen_in_a_config_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    loggers = {"csv": {"_target_": "pytorch_lightning.loggers.CSVLogger"}}
    check_loggers(loggers)  # the core's logger needs nothing
    loggers["wandb"] = {"_target_": "pytorch_lightning.loggers.WandbLogger"}
    with pytest.raises(ImportError, match=r"pip install 'mask_age_gender\[wandb\]'"):
        check_loggers(loggers)
