"""User mistakes get a message, not a stack trace (issue #13): a missing archive, a malformed
one, an unknown config option, pretrained weights with no network. ``HYDRA_FULL_ERROR=1``
keeps the traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mask_age_gender.models.backbone import PretrainedUnavailable, create_backbone

from .conftest import ROOT, TINY

TRACE = "Traceback (most recent call last)"


def run_train(
    *overrides: str, run_dir: Path, full_error: bool = False
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "1" if full_error else "0",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",  # the pretrained case fails fast even where there is a network
        "HF_HUB_CACHE": str(run_dir.parent / "hub_cache"),  # … and finds no cached weights
    }
    command = [sys.executable, "-m", "mask_age_gender.train", *TINY, *overrides]
    command.append(f"hydra.run.dir={run_dir}")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def bad_archive(archive_copy: Path) -> Path:
    (archive_copy / "train" / "train.csv").write_text("id,gender,race,age,path\n1,x,Asian,20,a\n")
    return archive_copy


CASES = {  # mistake: (overrides, what stderr says)
    "missing archive": (
        lambda archive, tmp: [f"data.root={tmp / 'nowhere'}"],
        ["error: no archive at data.root=", "make train"],
    ),
    "bad archive": (
        lambda archive, tmp: [f"data.root={bad_archive(archive)}"],
        ["error: archive ", "train/train.csv row 1: gender 'x' is not male or female"],
    ),
    "unknown option": (
        lambda archive, tmp: [f"data.root={archive}", "model=nonexistent"],
        ["Could not find 'model/nonexistent'", "Available options in 'model'", "test_resnet"],
    ),
    "pretrained offline": (
        lambda archive, tmp: [f"data.root={archive}", "model=resnet50", "model.pretrained=true"],
        ["error: model 'resnet50' with model.pretrained=true needs timm's model hub",
         "model.pretrained=false"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("mistake", CASES)
def test_a_user_mistake_prints_its_message_without_a_traceback(
    mistake: str, archive_copy: Path, tmp_path: Path
) -> None:
    overrides, messages = CASES[mistake]
    started = time.perf_counter()
    result = run_train(*overrides(archive_copy, tmp_path), run_dir=tmp_path / "run")
    print(f"{mistake}: exit {result.returncode} in {time.perf_counter() - started:.1f} s")
    print(result.stderr)
    assert result.returncode == 1
    assert TRACE not in result.stderr and TRACE not in result.stdout
    for message in messages:
        assert message in result.stderr


def test_hydra_full_error_keeps_the_traceback(archive_copy: Path, tmp_path: Path) -> None:
    result = run_train(
        f"data.root={bad_archive(archive_copy)}", run_dir=tmp_path / "run", full_error=True
    )
    assert result.returncode == 1
    assert TRACE in result.stderr and "ArchiveError: archive " in result.stderr


def test_pretrained_weights_without_a_network_fail_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    def no_network(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # no cached copy
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    with pytest.raises(PretrainedUnavailable, match="huggingface.co does not resolve"):
        create_backbone("resnet18", pretrained=True)
    assert time.perf_counter() - started < 5  # not the hub client's half minute of retries
    assert constants.HF_HUB_OFFLINE is False  # offline only for the attempt


def test_predict_tells_a_missing_checkpoint_by_its_message(archive: Path, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "mask_age_gender.predict", f"ckpt={tmp_path / 'none.ckpt'}",
        f"data.root={archive}", f"output={tmp_path / 'submission.csv'}",
    ]  # fmt: skip
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert TRACE not in result.stderr and f"error: checkpoint {tmp_path}" in result.stderr
