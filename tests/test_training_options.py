"""Training options that only show in a real run: loader workers, the photo caches, class
weights from the data, resuming from ``ckpt_path=``, and ``model.channels_last=auto``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from mask_age_gender.data.archive import read_train
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.train import train
from mask_age_gender.training import build
from mask_age_gender.training.build import build_datamodule, fitted_config

from .conftest import TINY, compose_config

TIMINGS = {"seconds", "fit_images_per_s", "fit_images", "cache_gb", "people_seconds"}  # by run
# random augmentation, a weighted sampler and 2 epochs of 4 batches: what workers could change
# dropout draws from torch's global RNG: a loader that also drew from it (one without its own
# generator, iterated anew each epoch with 0 workers, once with persistent ones) shifts it
RUN = ["transform=light", "data.sampler=weighted", "+trainer.limit_train_batches=4"]
RUN += ["model.drop_rate=0.3"]


def results(run: Path) -> tuple[dict, pd.DataFrame]:
    summary = json.loads((run / "summary.json").read_text())
    numbers = {k: v for k, v in summary.items() if isinstance(v, int | float) and k not in TIMINGS}
    return numbers, pd.read_csv(run / "val_predictions.csv")


def run_tiny(archive: Path, run: Path, *overrides: str) -> tuple[dict, pd.DataFrame]:
    train(compose_config([*TINY, f"data.root={archive}", *RUN, *overrides], run))
    return results(run)


@pytest.fixture(scope="module")
def reference(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    """The run without workers or cache, that the others must reproduce exactly."""
    run = tmp_path_factory.mktemp("reference") / "run"
    return run_tiny(archive, run, "data.cache=none", "data.num_workers=0")


def assert_same_run(got: tuple[dict, pd.DataFrame], expected: tuple[dict, pd.DataFrame]) -> None:
    assert {"val_f1", "val_loss", "train_loss"} <= set(expected[0])
    assert got[0] == pytest.approx(expected[0], abs=1e-6)
    pd.testing.assert_frame_equal(got[1].drop(columns="path"), expected[1].drop(columns="path"))


WORKERS = pytest.mark.slow  # two loader processes started per epoch


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        # the sampler's seeds travel to the workers
        pytest.param(["data.num_workers=2", "data.cache=none"], id="workers", marks=WORKERS),
        pytest.param(  # one shared array the workers fill
            ["data.num_workers=2", "data.cache=memory"], id="workers_memory_cache", marks=WORKERS
        ),
        pytest.param(["data.num_workers=0", "data.cache=memory"], id="memory_cache"),
        pytest.param(["data.num_workers=0", "data.cache=disk"], id="disk_cache"),
    ],
)
def test_workers_and_caches_reproduce_the_plain_run(
    archive: Path, tmp_path: Path, reference: tuple[dict, pd.DataFrame], options: list[str]
) -> None:
    """Each photo's augmentation is seeded by the sampler, not by the worker that loads it, and
    a cache holds the pixels the augmentation would have decoded: same seed, same run."""
    got = run_tiny(archive, tmp_path / "run", *options, f"data.cache_dir={tmp_path / 'cache'}")
    assert_same_run(got, reference)
    if "data.cache=disk" in options:
        assert len(list((tmp_path / "cache").rglob("*.npy"))) > 0


@pytest.mark.slow
def test_inverse_frequency_class_weights_reach_the_checkpoint(
    train_config: Callable[..., DictConfig], archive: Path
) -> None:
    cfg = train_config("loss=focal", "loss.class_weights=inverse_frequency", "trainer=debug")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    weights = ckpt["hyper_parameters"]["config"]["loss"]["class_weights"]
    # the training split: every photo of the archive but the validation ones
    val = set(pd.read_csv(run / "val_predictions.csv")["path"])
    table = read_train(archive, verify_images=False)
    labels = table.loc[~table["path"].isin(val), "label"].to_numpy()
    assert 0 < len(labels) < len(table)
    counts = np.bincount(labels, minlength=18)
    expected = len(labels) / (18 * np.maximum(counts, 1))
    assert weights["class"] == pytest.approx(expected, rel=1e-5)
    assert set(weights) == {"class"}


@pytest.mark.slow
def test_ckpt_path_resumes_a_stopped_run_to_the_uninterrupted_result(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With dropout, which draws from torch's global RNG: the resumed run must restore it."""
    plain = ["data.cache=none", "data.num_workers=0", "model.drop_rate=0.3"]
    reference = run_tiny(archive, tmp_path / "uninterrupted", *plain)

    class StopAfterFirstEpoch(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            trainer.should_stop = True

    class CountSteps(pl.Callback):
        steps = 0

        def on_train_batch_end(self, *args: object) -> None:
            CountSteps.steps += 1

    run_callbacks = build.run_callbacks  # the callbacks every run gets, and one more
    monkeypatch.setattr(
        build, "run_callbacks", lambda run: [*run_callbacks(run), StopAfterFirstEpoch()]
    )
    run = tmp_path / "run"
    stopped = run_tiny(archive, run, *plain)
    assert stopped[0]["epochs_run"] == 1  # stopped after the first of two epochs
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    monkeypatch.setattr(build, "run_callbacks", lambda run: [*run_callbacks(run), CountSteps()])
    resumed = run_tiny(archive, run, *plain, f"ckpt_path={last}")
    assert CountSteps.steps == 4  # the second epoch only: continued, not started again
    assert json.loads((run / "summary.json").read_text())["resumed_from"] == str(last)
    assert resumed[0]["epochs_run"] == reference[0]["epochs_run"] == 2
    assert_same_run(resumed, reference)


@pytest.mark.parametrize(("option", "nhwc"), [("auto", False), ("true", True), ("false", False)])
def test_channels_last_auto_is_off_on_the_cpu(
    train_config: Callable[..., DictConfig], option: str, nhwc: bool
) -> None:
    config = OmegaConf.to_container(train_config(f"model.channels_last={option}"), resolve=True)
    datamodule = build_datamodule(config)
    module = FaceClassifier(fitted_config(config, datamodule))
    trainer = pl.Trainer(
        accelerator="cpu", limit_val_batches=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.validate(module, datamodule=datamodule, verbose=False)  # setup() decides
    convs = [m.weight for m in module.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    convs = [w for w in convs if w.shape[1] > 1 and w.shape[2] * w.shape[3] > 1]
    assert len(convs) > 1
    formats = {w.is_contiguous(memory_format=torch.channels_last) for w in convs}
    assert formats == {nhwc} and module.channels_last is nhwc


@pytest.mark.slow
def test_early_stopping_ends_a_run_whose_val_f1_stays_flat(
    train_config: Callable[..., DictConfig],
) -> None:
    """Patience 1 and a learning rate of 0 (the val F1 of every epoch alike): the run stops
    after its second epoch of six, and the stopping callback's best score is the val F1.
    test_vit: no batch-norm statistics, which move in training even at a learning rate of 0."""
    cfg = train_config(
        "model=test_vit", "optimizer.lr=0", "scheduler=none", "trainer.max_epochs=6",
        "callbacks.early_stopping.patience=1", "+trainer.limit_train_batches=2",
    )  # fmt: skip
    train(cfg)
    run = Path(cfg.paths.output_dir)
    summary = json.loads((run / "summary.json").read_text())
    val_f1 = pd.read_csv(run / "metrics.csv")["val/f1"].dropna()
    assert val_f1.nunique() == 1  # flat, as the test needs
    assert summary["epochs_run"] == 2 and len(val_f1) == 2
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    [stopping] = [v for k, v in ckpt["callbacks"].items() if k.startswith("EarlyStopping")]
    # a wrong monitor can stop a flat run too (val/loss does), but its best score is no val F1
    assert float(stopping["best_score"]) == pytest.approx(summary["val_f1"], abs=1e-5)
    assert stopping["stopped_epoch"] == 1
