"""Prediction from checkpoints: row order, ensembles, mismatches, untrusted files (the command
itself runs in test_offline.py, after train, in one fresh process)."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from mask_age_gender.data.archive import read_eval
from mask_age_gender.files import PROBABILITIES
from mask_age_gender.inference.checkpoints import CheckpointMismatch, load_classifier
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.inference.proba import eval_loader, predict_as_trained, predict_proba
from mask_age_gender.train import train

from .conftest import TINY, compose_config


@pytest.fixture(scope="module")
def run_dir(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny finished training run on the shared archive."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(compose_config([*TINY, f"data.root={archive}", "trainer.max_epochs=1"], run))
    return run


def predict_config(archive: Path, output: Path, *overrides: str):
    return compose_config(
        [f"data.root={archive}", f"output={output}", *overrides], output.parent, name="predict"
    )


@pytest.mark.slow
def test_predict_reproduces_the_runs_submission_in_info_csv_order(
    archive: Path, run_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = tmp_path / "submission.csv"
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    cfg = predict_config(archive, output, f"ckpt={ckpt}")
    with caplog.at_level(logging.INFO, logger="mask_age_gender.inference.proba"):
        predict_archive(cfg)
    assert f"predicting 21 photos with {ckpt}" in caplog.text  # the checkpoint named
    written = pd.read_csv(output, dtype={"ImageID": str})
    info = pd.read_csv(archive / "eval" / "info.csv", dtype=str)
    assert written.columns.tolist() == ["ImageID", "ans"]
    assert written["ImageID"].tolist() == info["ImageID"].tolist()
    expected = pd.read_csv(run_dir / "submission.csv", dtype={"ImageID": str})
    assert written.equals(expected)


@pytest.mark.slow
def test_an_ensemble_of_a_checkpoint_with_itself_equals_the_checkpoint(
    archive: Path, run_dir: Path, tmp_path: Path
) -> None:
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    cfg = predict_config(archive, tmp_path / "pair.csv", f"ckpt=[{ckpt},{ckpt}]", "tta=hflip")
    pair = predict_archive(cfg)
    single = predict_archive(
        predict_config(archive, tmp_path / "one.csv", f"ckpt={ckpt}", "tta=hflip")
    )
    assert pair.equals(single)


@pytest.mark.slow
def test_a_checkpoint_trained_otherwise_is_refused(
    archive: Path, run_dir: Path, tmp_path: Path
) -> None:
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    output = tmp_path / "submission.csv"
    cfg = predict_config(archive, output, f"ckpt={ckpt}", "expect.head=multi")
    with pytest.raises(CheckpointMismatch, match="trained with head=single.*asks head=multi"):
        predict_archive(cfg)
    cfg = predict_config(archive, output, f"ckpt={ckpt}", "expect.age_bins=[30,58]")
    with pytest.raises(CheckpointMismatch, match="age_bins"):
        predict_archive(cfg)
    assert not output.exists()


@pytest.mark.slow
def test_hflip_tta_is_the_mean_of_each_photo_and_its_mirror_image(
    archive: Path, run_dir: Path
) -> None:
    module = load_classifier(run_dir / "checkpoints" / "best.ckpt")
    loader = eval_loader(module, list(read_eval(archive)["path"]), batch_size=4, num_workers=0)
    with torch.inference_mode():  # by hand: the module's forward pass, photo and mirror image
        plain = torch.cat([module.predict_proba(images) for images, *_ in loader]).numpy()
        mirror = torch.cat([module.predict_proba(images.flip(3)) for images, *_ in loader])
    expected = (plain + mirror.numpy()) / 2
    assert predict_proba(module, loader) == pytest.approx(plain, abs=1e-6)
    assert predict_proba(module, loader, tta="hflip") == pytest.approx(expected, abs=1e-6)
    assert np.abs(expected - plain).max() > 1e-4  # the mirror image changes the answer


@pytest.mark.slow
def test_predict_gives_what_the_training_run_gives_with_a_float32_trainer(
    archive: Path, run_dir: Path, tmp_path: Path
) -> None:
    """The probabilities ``predict`` writes are those of ``predict_as_trained`` under a
    float32 Trainer, the kind ``trainer=cpu`` trains with."""
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    output = tmp_path / "submission.csv"
    predict_archive(predict_config(archive, output, f"ckpt={ckpt}"))
    written = pd.read_csv(output.with_name("probabilities.csv"))[PROBABILITIES].to_numpy()
    module = load_classifier(ckpt)
    loader = eval_loader(module, list(read_eval(archive)["path"]), batch_size=4, num_workers=0)
    trainer = pl.Trainer(accelerator="cpu", precision="32-true", logger=False)
    as_trained = predict_as_trained(trainer, module, loader)
    assert as_trained.shape == (len(written), 18) and as_trained.dtype == np.float32
    assert written == pytest.approx(as_trained, abs=1e-6)  # rounded to 6 places when written


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_that_would_run_code_is_refused(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": RunsCode()}))
    cfg = predict_config(archive, tmp_path / "s.csv", f"ckpt={evil}")
    with pytest.raises(pickle.UnpicklingError):
        predict_archive(cfg)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "s.csv").exists()


@pytest.mark.slow
def test_checkpoint_loads_with_weights_only(run_dir: Path) -> None:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["config"]["model"]["name"] == "test_resnet"
