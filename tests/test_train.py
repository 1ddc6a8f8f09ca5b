"""Training runs in this process with the real config, Trainer and a tiny timm model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig
from sklearn.metrics import f1_score

from mask_age_gender.data.archive import ArchiveError
from mask_age_gender.train import train
from mask_age_gender.training.build import DataNotFound

from .conftest import EVAL_PEOPLE, PEOPLE, ROOT, TINY

SUMMARY_KEYS = {
    "val_f1", "val_acc", "val_f1_mask", "val_f1_gender", "val_f1_age", "val_loss",
    "train_f1", "train_loss", "best_epoch", "epochs_run", "train_people", "val_people",
    "train_images", "val_images", "seconds", "best_ckpt",
    "model", "head", "loss", "optimizer", "scheduler", "transform", "trainer",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("head", ["single", "multi"])
def test_a_run_writes_every_run_directory_file(
    train_config: Callable[..., DictConfig], head: str
) -> None:
    cfg = train_config(f"head={head}")
    val_f1 = train(cfg)
    run = Path(cfg.paths.output_dir)
    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["head"] == head and summary["model"] == "test_resnet"
    assert summary["val_f1"] == val_f1 and 0.0 <= val_f1 <= 1.0
    assert summary["epochs_run"] == 2 and summary["best_epoch"] in (0, 1)
    assert summary["train_people"] + summary["val_people"] == PEOPLE
    assert summary["train_images"] == 7 * summary["train_people"]
    assert (run / summary["best_ckpt"]).is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()

    metrics = pd.read_csv(run / "metrics.csv")
    assert sorted(metrics["epoch"].dropna().unique()) == [0, 1]
    assert {"train/loss", "train/f1", "val/loss", "val/f1", "val/f1_mask"} <= set(metrics)

    preds = pd.read_csv(run / "val_predictions.csv")
    assert len(preds) == summary["val_images"]
    assert preds["person"].nunique() == summary["val_people"]
    probs = preds[[f"p{k:02d}" for k in range(18)]].to_numpy()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-4
    assert (probs.argmax(axis=1) == preds["pred"]).all()
    recomputed = f1_score(preds["true"], preds["pred"], average="macro")
    assert recomputed == pytest.approx(summary["val_f1"], abs=1e-5)
    logged = metrics.groupby("epoch")["val/f1"].max()[summary["best_epoch"]]
    assert logged == pytest.approx(summary["val_f1"], abs=1e-5)

    info = pd.read_csv(Path(cfg.data.root) / "eval" / "info.csv", dtype=str)
    submission = pd.read_csv(run / "submission.csv", dtype={"ImageID": str})
    assert submission["ImageID"].tolist() == info["ImageID"].tolist()
    assert submission["ans"].between(0, 17).all() and len(submission) == 7 * EVAL_PEOPLE


@pytest.mark.slow
def test_age_bins_move_the_labels_of_a_run(train_config: Callable[..., DictConfig]) -> None:
    cfg = train_config("data.age_bins=[30,58]", "trainer=debug")
    train(cfg)
    preds = pd.read_csv(Path(cfg.paths.output_dir) / "val_predictions.csv")
    expected_age = np.digitize(preds["age"], [30, 58])
    assert (preds["true"] % 3 == expected_age).all()


def test_missing_archive_says_where_and_how_to_get_the_demo(
    train_config: Callable[..., DictConfig], tmp_path: Path
) -> None:
    cfg = train_config(f"data.root={tmp_path / 'nowhere'}")
    with pytest.raises(DataNotFound, match=r"expected train/train.csv.*make train"):
        train(cfg)


def test_bad_archive_stops_before_anything_is_written(
    train_config: Callable[..., DictConfig], archive_copy: Path
) -> None:
    (archive_copy / "train" / "train.csv").write_text("id,gender,race,age,path\n1,x,Asian,20,a\n")
    cfg = train_config(f"data.root={archive_copy}")
    with pytest.raises(ArchiveError, match="gender 'x'"):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    assert not run.exists() or not any(run.iterdir())


def run_app(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "0",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }
    command = [sys.executable, "-m", "mask_age_gender.train", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def run_sweep(
    archive: Path, sweep_dir: Path, *overrides: str, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``train -m`` over the tiny archive; ``overrides`` replace the tiny settings they name."""
    named = {o.split("=", 1)[0].lstrip("+") for o in overrides}
    tiny = [o for o in TINY if o.split("=", 1)[0] not in named]
    paths = [f"data.root={archive}", f"hydra.sweep.dir={sweep_dir}"]
    result = run_app(*flags, "-m", *tiny, *overrides, *paths, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
