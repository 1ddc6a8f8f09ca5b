"""Ensembles and TTA: voting, checkpoint folders, validation and out-of-fold scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.ensemble import combine
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.inference.proba import eval_loader, predict_proba
from mask_age_gender.train import train

from .conftest import TINY, compose_config

FOLDS = 2


@pytest.fixture(scope="module")
def kfold(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-fold sweep of tiny runs: each validates on the people the other trained on."""
    sweep = tmp_path_factory.mktemp("kfold")
    for fold in range(FOLDS):
        overrides = [*TINY, f"data.root={archive}", "trainer.max_epochs=1"]
        overrides += [f"data.n_folds={FOLDS}", f"data.fold={fold}"]
        train(compose_config(overrides, sweep / f"data.fold={fold}"))
    return sweep


def predict(tmp_path: Path, *overrides: str) -> pd.DataFrame:
    return predict_archive(compose_config(list(overrides), tmp_path, name="predict"))


def test_hard_vote_takes_the_majority_and_breaks_ties_by_summed_probability() -> None:
    sure_b = np.array([[0.05, 0.9, 0.05]])
    leans_a = np.array([[0.4, 0.3, 0.3]])
    labels, mean = combine([leans_a, leans_a, sure_b], "hard")
    assert labels.tolist() == [0]  # two votes for class 0 beat a confident vote for 1
    assert combine([leans_a, leans_a, sure_b], "soft")[0].tolist() == [1]
    assert mean == pytest.approx((2 * leans_a + sure_b) / 3)
    # one vote each for 0 and 1: the tie goes to the larger sum, 0.4 + 0.05 < 0.3 + 0.9
    assert combine([leans_a, sure_b], "hard")[0].tolist() == [1]
    thirds = np.array([[0.5, 0.2, 0.3]]), np.array([[0.2, 0.5, 0.3]]), np.array([[0.1, 0.3, 0.6]])
    assert combine(list(thirds), "hard")[0].tolist() == [2]  # a vote each; sums 0.8, 1.0, 1.2
    with pytest.raises(ValueError, match="ensemble must be one of soft, hard"):
        combine([leans_a], "median")


@pytest.mark.slow
def test_hflip_tta_of_a_mirror_symmetric_photo_changes_nothing(kfold: Path, tmp_path: Path) -> None:
    model = load_classifier(kfold / "data.fold=0" / "checkpoints" / "best.ckpt")
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, (64, 24, 3), dtype=np.uint8)
    photos = {"symmetric": np.concatenate([half, half[:, ::-1]], axis=1)}
    photos["lopsided"] = np.concatenate([half, rng.integers(0, 256, half.shape, np.uint8)], 1)
    paths = []
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")  # lossless: stays symmetric
        paths.append(str(tmp_path / f"{name}.png"))
    loader = eval_loader(model, paths, batch_size=2, num_workers=0)
    plain, mirrored = (predict_proba(model, loader, tta=tta) for tta in ("none", "hflip"))
    assert mirrored[0] == pytest.approx(plain[0], abs=1e-6)
    assert np.abs(mirrored[1] - plain[1]).max() > 1e-4  # the flip does something


@pytest.mark.slow
def test_ckpt_dir_ensembles_every_best_checkpoint_and_writes_probabilities(
    archive: Path, kfold: Path, tmp_path: Path
) -> None:
    output = tmp_path / "submission.csv"
    submission = predict(tmp_path, f"ckpt_dir={kfold}", f"data.root={archive}", f"output={output}")
    probabilities = pd.read_csv(tmp_path / "probabilities.csv", dtype={"ImageID": str})
    assert probabilities["ImageID"].tolist() == submission["ImageID"].tolist()
    probs = probabilities.drop(columns="ImageID").to_numpy()
    assert probs.shape == (len(submission), 18)
    assert probs.sum(axis=1) == pytest.approx(np.ones(len(probs)), abs=1e-4)
    assert (probs.argmax(axis=1) == submission["ans"].to_numpy()).all()
    folds = [f"'{kfold}/data.fold={k}/checkpoints/best.ckpt'" for k in range(FOLDS)]
    listed = predict(
        tmp_path,
        f"ckpt=[{','.join(folds)}]",
        f"data.root={archive}",
        f"output={tmp_path / 'listed.csv'}",
    )
    assert listed.equals(submission)


@pytest.mark.slow
def test_split_val_scores_a_checkpoint_as_its_run_did(kfold: Path, tmp_path: Path) -> None:
    run = kfold / "data.fold=1"
    output = tmp_path / "val.csv"
    checkpoint = f"ckpt='{run}/checkpoints/best.ckpt'"
    predict(tmp_path, checkpoint, "split=val", f"output={output}", "people.group=true")
    scores = json.loads(output.with_suffix(".json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert scores["f1"] == pytest.approx(summary["val_f1"], abs=1e-6)
    assert scores["people"] == summary["val_people"] and scores["photos"] == summary["val_images"]
    ours = pd.read_csv(output).drop(columns="fold")
    theirs = pd.read_csv(run / "val_predictions.csv")
    assert ours["pred"].equals(theirs["pred"])
    pd.testing.assert_frame_equal(ours, theirs, atol=2e-6, rtol=0)  # rounded to 6 places
    assert ours["group"].equals(theirs["group"])  # the people the run found, found again


@pytest.mark.slow
def test_split_oof_joins_the_folds_over_every_person(
    archive: Path, kfold: Path, tmp_path: Path
) -> None:
    output = tmp_path / "oof.csv"
    table = predict(tmp_path, f"ckpt_dir={kfold}", "split=oof", "ensemble=hard", f"output={output}")
    scores = json.loads(output.with_suffix(".json").read_text())
    people = pd.read_csv(archive / "train" / "train.csv")
    assert scores["people"] == scores["people_in_archive"] == len(people)
    assert len(table) == 7 * len(people) and table["path"].is_unique
    for fold in range(FOLDS):
        summary = json.loads((kfold / f"data.fold={fold}" / "summary.json").read_text())
        assert scores["folds"][str(fold)]["f1"] == pytest.approx(summary["val_f1"], abs=1e-6)
    with pytest.raises(ValueError, match="folds \\[0, 1\\]: use split=oof"):
        predict(tmp_path, f"ckpt_dir={kfold}", "split=val")


@pytest.mark.slow
def test_a_seed_sweep_validates_on_the_same_people_and_ensembles_there(
    archive: Path, tmp_path: Path
) -> None:
    """``seed`` varies training only (``data.split_seed`` draws the folds): two seeds predict
    the same validation photos differently, and ``split=val`` takes their ensemble."""
    sweep = tmp_path / "seeds"
    for seed in (1, 2):
        overrides = [*TINY, f"data.root={archive}", "trainer.max_epochs=1", f"seed={seed}"]
        train(
            compose_config([*overrides, "+trainer.limit_train_batches=1"], sweep / f"seed={seed}")
        )
    first, second = (pd.read_csv(sweep / f"seed={seed}" / "val_predictions.csv") for seed in (1, 2))
    assert first["path"].tolist() == second["path"].tolist()  # the same people, photo for photo
    probs = [f"p{c:02d}" for c in range(18)]
    assert np.abs(first[probs].to_numpy() - second[probs].to_numpy()).max() > 1e-3
    output = tmp_path / "val.csv"
    table = predict(tmp_path, f"ckpt_dir={sweep}", "split=val", f"output={output}")
    scores = json.loads(output.with_suffix(".json").read_text())
    assert scores["checkpoints"] == 2 and set(table["path"]) == set(first["path"])
    assert (
        scores["people"]
        == json.loads((sweep / "seed=1" / "summary.json").read_text())["val_people"]
    )
