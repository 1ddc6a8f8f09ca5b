"""Runs that survive faults: kill and resume, signals, NaN, bad photos, no room, no network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from mask_age_gender import files
from mask_age_gender.files import write_csv_atomic
from mask_age_gender.models.nonfinite import NonFiniteLoss
from mask_age_gender.resolvers import hydra_subdir, resume_dir
from mask_age_gender.results.run_reader import epoch_history
from mask_age_gender.train import train
from mask_age_gender.training import status
from mask_age_gender.training.resume import ResumeRefused, check_resumable
from mask_age_gender.training.status import NotEnoughRoom

from .conftest import ROOT, TEST_CONF, TINY, compose_config

TIMINGS = {"seconds", "fit_images_per_s", "fit_images", "people_seconds"}  # differ by process
STEPS_PER_EPOCH = 10  # 161 training photos of the tiny archive in batches of 16, last dropped
# one thread: a tiny model runs faster on it, and a run and its resumption compute alike
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def app(*args: str, module: str = "mask_age_gender.train") -> list[str]:
    return [sys.executable, "-m", module, *args]


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def checkpoint_step(ckpt: Path) -> int:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]


def wait_for_checkpoint(process: subprocess.Popen, ckpt: Path, after_step: int) -> int:
    """The step of ``ckpt`` once it is past ``after_step`` (the process still running)."""
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if ckpt.is_file() and (step := checkpoint_step(ckpt)) > after_step:
            return step
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint past step {after_step} (exit {process.poll()})")


@pytest.mark.slow
def test_a_run_killed_in_epoch_two_resumes_to_the_uninterrupted_result(
    archive: Path, tmp_path: Path
) -> None:
    overrides = [
        *TINY, f"data.root={archive}", "trainer.max_epochs=3",
        "callbacks.periodic_last.every_n_train_steps=3",
        # both draw from torch's global RNG: the resumed run must restore it to match
        "model.drop_rate=0.3", "mix=vertical_cutmix",
    ]  # fmt: skip
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    victim = subprocess.Popen(
        app(*overrides, f"hydra.run.dir={killed}"), cwd=ROOT, env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    step = wait_for_checkpoint(victim, killed / "checkpoints" / "last.ckpt", STEPS_PER_EPOCH)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert STEPS_PER_EPOCH < step < 2 * STEPS_PER_EPOCH  # killed during the second epoch
    assert summary_of(killed)["status"] == "running"  # a killed run never looks finished
    assert not (killed / "val_predictions.csv").exists()

    resumed = subprocess.run(  # the same --config-dir, as resume=DIR composes from it again
        app("--config-dir", str(TEST_CONF), f"resume={killed}"),
        cwd=ROOT, env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    train(compose_config(overrides, reference))  # the uninterrupted run, here: one thread too

    expected, got = summary_of(reference), summary_of(killed)
    assert got["status"] == "finished" and got["resumed_from"].endswith("last.ckpt")
    numbers = [k for k, v in expected.items() if isinstance(v, int | float) and k not in TIMINGS]
    assert {"val_f1", "val_loss", "train_f1", "train_loss", "best_epoch"} <= set(numbers)
    for key in numbers:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    predictions = [pd.read_csv(run / "val_predictions.csv") for run in (reference, killed)]
    assert predictions[0].equals(predictions[1])
    # every epoch's row, the ones before the kill included (the CSV logger drops them itself)
    histories = [epoch_history(run / "metrics.csv") for run in (reference, killed)]
    pd.testing.assert_frame_equal(histories[0], histories[1], atol=1e-6, rtol=0)
    first_start = (killed / ".hydra" / "overrides.yaml").read_text()
    assert "resume=" not in first_start  # the run's record of its experiment is kept
    assert "resume=" in (killed / ".hydra-resumed" / "overrides.yaml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "ctrl_c"])
def test_sigterm_and_ctrl_c_save_last_ckpt_and_mark_the_run_interrupted(
    archive: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    run = tmp_path / "run"
    overrides = [*TINY, f"data.root={archive}", "callbacks.periodic_last.every_n_train_steps=2"]
    process = subprocess.Popen(
        app(*overrides, f"hydra.run.dir={run}"), cwd=ROOT, env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    step = wait_for_checkpoint(process, run / "checkpoints" / "last.ckpt", 0)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + stop, stderr[-3000:]
    summary = summary_of(run)
    assert summary["status"] == "interrupted" and summary["reason"] == stop.name
    assert summary["resume"] == f"resume={run}"
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") >= step  # saved on the way out


@pytest.mark.slow
def test_same_seed_same_results(train_config: Callable[..., DictConfig], tmp_path: Path) -> None:
    results = []
    for name in ("a", "b"):
        cfg = train_config("trainer=debug", "transform=light")  # random augmentation included
        cfg.paths.output_dir = str(tmp_path / name)
        train(cfg)
        run = tmp_path / name
        summary = {k: v for k, v in summary_of(run).items() if k not in TIMINGS}
        results.append((summary, pd.read_csv(run / "val_predictions.csv")))
    assert results[0][0] == results[1][0]
    assert results[0][1].equals(results[1][1])


@pytest.mark.slow
def test_a_nan_loss_fails_the_run_naming_the_step_and_photos(
    train_config: Callable[..., DictConfig],
) -> None:
    cfg = train_config("trainer=debug", "optimizer.lr=1e30", "scheduler=none")  # diverges
    with pytest.raises(NonFiniteLoss, match=r"train loss is (nan|inf) at epoch 0, step 1:") as err:
        train(cfg)
    photos = [line.strip() for line in str(err.value).splitlines()[1:]]
    assert len(photos) == 16 and all(Path(p).is_file() for p in photos)
    summary = summary_of(Path(cfg.paths.output_dir))
    assert summary["status"] == "failed"
    assert summary["reason"].startswith("NonFiniteLoss: train loss is nan")


@pytest.mark.slow
def test_a_photo_unreadable_after_the_start_check_fails_the_run_naming_it(
    train_config: Callable[..., DictConfig], archive_copy: Path
) -> None:
    for photo in (archive_copy / "train" / "images").rglob("[!.]*.*"):
        photo.write_bytes(b"not a photo any more")
    cfg = train_config(f"data.root={archive_copy}", "trainer=debug", "data.verify_images=false")
    with pytest.raises(OSError, match=r"photo .*/train/images/.* cannot be decoded"):
        train(cfg)
    summary = summary_of(Path(cfg.paths.output_dir))
    assert summary["status"] == "failed" and "cannot be decoded" in summary["reason"]


def test_no_room_for_the_checkpoints_stops_before_training(
    train_config: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    # no tmpfs without root tricks here: the free space is faked
    full = SimpleNamespace(total=10**9, used=10**9 - 1000, free=1000)
    monkeypatch.setattr(status.shutil, "disk_usage", lambda path: full)
    cfg = train_config()
    with pytest.raises(NotEnoughRoom, match=r"has 0.0 MiB free; the checkpoints need about"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "summary.json").exists()


def test_resume_refuses_a_changed_experiment_but_not_more_epochs(
    train_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    config = OmegaConf.to_container(train_config(), resolve=True)
    ckpt = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": {"config": config}}, ckpt)
    longer = {**config, "trainer": {**config["trainer"], "max_epochs": 9}, "resume": "x"}
    check_resumable(ckpt, longer)
    other = {**config, "optimizer": {**config["optimizer"], "lr": 0.5}}
    with pytest.raises(ResumeRefused, match=r"optimizer.lr: 0.001 in the checkpoint, 0.5 now"):
        check_resumable(ckpt, other)


def test_a_write_interrupted_before_its_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a killed ``predict`` or ``train`` leaves: the previous file or none, no partial."""
    submission = tmp_path / "submission.csv"
    write_csv_atomic(submission, pd.DataFrame({"ImageID": ["a"], "ans": [1]}))

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_csv_atomic(submission, pd.DataFrame({"ImageID": ["a", "b"], "ans": [2, 3]}))
    assert pd.read_csv(submission)["ans"].tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]  # no temp left


def test_a_resumed_run_continues_in_its_own_directory() -> None:
    assert resume_dir("runs/a", None, "new") == "runs/a"
    assert resume_dir(None, "runs/b/checkpoints/last.ckpt", "new") == "runs/b"
    assert resume_dir(None, None, "new") == "new"
    assert hydra_subdir("runs/a", None) == hydra_subdir(None, "runs/b/checkpoints/x.ckpt")
    assert hydra_subdir(None, None) == ".hydra" != hydra_subdir("runs/a", None)
