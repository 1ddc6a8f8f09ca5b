"""``data.normalize_on=device``: uint8 batches, normalised by the model, as the loader would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from mask_age_gender.data.transforms import build_transform, normalize_where
from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.inference.proba import eval_loader
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.train import train

from .conftest import TINY, compose_config

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def test_the_model_normalises_uint8_photos_as_the_loader_does(tmp_path: Path) -> None:
    cfg = compose_config(["transform=heavy", f"data.mean={MEAN}", f"data.std={STD}"], tmp_path)
    config = OmegaConf.to_container(cfg, resolve=True)
    photo = np.random.default_rng(0).integers(0, 255, size=(96, 72, 3), dtype=np.uint8)
    batches = {}
    for where in ("loader", "device"):
        pipeline = build_transform(config["transform"], [48, 36], MEAN, STD, True, where)
        pipeline.set_random_seed(7)  # the same augmentation for both
        batches[where] = torch.stack([pipeline(image=photo)["image"] for _ in range(4)])
    assert batches["loader"].dtype == torch.float32 and batches["device"].dtype == torch.uint8
    module = FaceClassifier(config)
    normalised = module.as_input(batches["device"])
    assert normalised.dtype == torch.float32
    assert (normalised - batches["loader"]).abs().max() < 1e-5
    assert module.as_input(batches["loader"]) is batches["loader"]  # float: already normalised
    module.channels_last = True  # converted while still uint8; the layout survives normalising
    assert module.as_input(batches["device"]).is_contiguous(memory_format=torch.channels_last)
    assert not any(name.startswith("pixel_") for name in module.state_dict())
    half = module.to(torch.bfloat16).as_input(batches["device"])  # as precision=bf16-true has it
    assert half.dtype == torch.bfloat16  # normalised in float32, then rounded once
    assert (half.float() - batches["loader"]).abs().max() < 0.02


def test_a_step_that_leaves_uint8_is_refused_when_the_model_normalises() -> None:
    recipe = {"augment": {"float": {"_target_": "albumentations.ToFloat", "p": 1.0}}}
    photo = np.zeros((16, 12, 3), dtype=np.uint8)
    pipeline = build_transform(recipe, [8, 6], MEAN, STD, True, "device")
    with pytest.raises(TypeError, match="float32 pixels.*data.normalize_on=loader"):
        pipeline(image=photo)


def test_auto_normalises_on_the_device_where_cuda_is_and_unknown_places_are_refused() -> None:
    auto = build_transform({}, [8, 6], MEAN, STD, False, "auto")
    assert auto.normalize_on == ("device" if torch.cuda.is_available() else "loader")
    assert normalize_where("loader") == "loader" and normalize_where("device") == "device"
    with pytest.raises(ValueError, match="data.normalize_on must be one of .*'gpu'"):
        build_transform({}, [8, 8], MEAN, STD, False, "gpu")


@pytest.mark.slow
def test_a_run_normalising_on_the_device_matches_its_loader_twin(
    archive: Path, tmp_path: Path
) -> None:
    """Same seed, mixup on: the same predictions, and ``predict`` of its checkpoint feeds uint8
    photos to the model as the run did."""
    runs = {}
    for where in ("loader", "device"):
        overrides = [f"data.root={archive}", "mix=mixup", f"data.normalize_on={where}"]
        run = tmp_path / where
        train(compose_config([*TINY, *overrides, "trainer.max_epochs=1"], run))
        runs[where] = run
    for where, run in runs.items():
        assert json.loads((run / "summary.json").read_text())["normalize_on"] == where
    loader, device = (pd.read_csv(runs[w] / "val_predictions.csv") for w in ("loader", "device"))
    assert (loader["pred"] == device["pred"]).all()
    probabilities = [f"p{k:02d}" for k in range(18)]
    assert np.abs(loader[probabilities] - device[probabilities]).to_numpy().max() < 1e-4
    output = tmp_path / "submission.csv"
    ckpt = runs["device"] / "checkpoints" / "best.ckpt"
    cfg = compose_config(
        [f"data.root={archive}", f"output={output}", f"ckpt={ckpt}"], tmp_path, name="predict"
    )
    written = predict_archive(cfg)
    photos = device["path"].tolist()[:2]
    images, *_ = next(iter(eval_loader(load_classifier(ckpt), photos, 2, 0)))
    assert images.dtype == torch.uint8
    assert written.equals(pd.read_csv(runs["device"] / "submission.csv", dtype={"ImageID": str}))
