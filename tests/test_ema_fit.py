"""EMA in a real fit: validation, checkpoints and the weights left after training are the
average of the raw weights, computed here from the raw weights after each optimizer step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.training.build import build_datamodule, fitted_config
from mask_age_gender.training.ema import EMA

DECAY, STEPS = 0.5, 4
Weights = dict[str, torch.Tensor]


class Recorder(pl.Callback):
    """The raw weights after every optimizer step, and the weights validation ran with."""

    def __init__(self) -> None:
        self.raw: list[Weights] = []
        self.validated: list[Weights] = []

    @staticmethod
    def weights(module: pl.LightningModule) -> Weights:
        return {k: v.detach().clone() for k, v in module.named_parameters()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.raw.append(self.weights(pl_module))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        if batch_idx == 0:
            self.validated.append(self.weights(pl_module))


def expected_average(raw: list[Weights]) -> Weights:
    """The documented EMA: the first step copied, then decay min(DECAY, (1+t)/(10+t))."""
    average = dict(raw[0])
    for t, weights in enumerate(raw[1:], start=1):
        beta = min(DECAY, (1 + t) / (10 + t))
        average = {k: beta * average[k] + (1 - beta) * weights[k] for k in average}
    return average


def fit(config: dict, run: Path, ema: bool) -> tuple[Recorder, FaceClassifier, dict]:
    datamodule = build_datamodule(config)
    module = FaceClassifier(fitted_config(config, datamodule))
    recorder = Recorder()
    checkpoint = ModelCheckpoint(dirpath=run, filename="end")
    callbacks = [*([EMA(decay=DECAY)] if ema else []), recorder, checkpoint]
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=STEPS, limit_val_batches=1,
        num_sanity_val_steps=0, callbacks=callbacks, logger=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    saved = torch.load(run / "end.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return recorder, module, saved


def assert_same(got: Weights, expected: Weights) -> None:
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6, msg=name)


def differs(got: Weights, other: Weights) -> bool:
    return any(not torch.allclose(got[k], other[k], atol=1e-6) for k in other)


@pytest.mark.slow
@pytest.mark.parametrize("ema", [True, False], ids=["ema", "no_ema"])
def test_validation_checkpoints_and_final_weights_are_the_average(
    train_config: Callable[..., DictConfig], tmp_path: Path, ema: bool
) -> None:
    config = OmegaConf.to_container(train_config("optimizer.lr=0.01"), resolve=True)
    recorder, module, saved = fit(config, tmp_path, ema)
    assert len(recorder.raw) == STEPS and len(recorder.validated) == 1
    raw = recorder.raw[-1]
    expected = expected_average(recorder.raw) if ema else raw
    assert differs(expected_average(recorder.raw), raw)  # the average is not the raw weights
    assert_same(recorder.validated[0], expected)
    assert_same(saved, expected)
    assert_same(Recorder.weights(module), expected)  # what predictions use after fit
