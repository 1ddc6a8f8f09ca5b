"""The summary scores the best checkpoint the way validation ran, and counts the images this
process trained."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import DictConfig

from mask_age_gender.files import PROBABILITIES
from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.proba import eval_loader
from mask_age_gender.train import train

BATCHES = 3  # training batches an epoch, of data.batch_size=16 photos


def probabilities(module: torch.nn.Module, loader: torch.utils.data.DataLoader) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([module.predict_proba(images).float() for images, *_ in loader]).numpy()


@pytest.mark.slow
def test_val_predictions_come_from_the_precision_validation_ran_in(
    train_config: Callable[..., DictConfig],
) -> None:
    cfg = train_config("trainer.precision=bf16-mixed", "model.channels_last=false")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    written = pd.read_csv(run / "val_predictions.csv")
    module = load_classifier(run / "checkpoints" / "best.ckpt")
    loader = eval_loader(module, list(written["path"]), batch_size=16, num_workers=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what Lightning's bf16-mixed runs
        as_validated = probabilities(module, loader)
    in_float32 = probabilities(module, loader)
    got = written[PROBABILITIES].to_numpy()
    assert got == pytest.approx(as_validated, abs=2e-6)
    assert np.abs(got - in_float32).max() > 1e-4  # so float32 predictions would fail above
    summary = json.loads((run / "summary.json").read_text())
    history = pd.read_csv(run / "metrics.csv").groupby("epoch")["val/f1"].max()
    assert summary["val_f1"] == pytest.approx(history[summary["best_epoch"]], abs=1e-6)


@pytest.mark.slow
def test_a_resumed_run_counts_only_the_images_it_trained(
    train_config: Callable[..., DictConfig],
) -> None:
    limit = f"+trainer.limit_train_batches={BATCHES}"
    first = train_config(limit, "trainer.max_epochs=1")
    train(first)
    run = Path(first.paths.output_dir)
    assert json.loads((run / "summary.json").read_text())["fit_images"] == BATCHES * 16
    last = run / "checkpoints" / "last.ckpt"
    train(train_config(limit, "trainer.max_epochs=3", f"ckpt_path={last}"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 3
    assert summary["fit_images"] == 2 * BATCHES * 16  # epochs 2 and 3, not all three
