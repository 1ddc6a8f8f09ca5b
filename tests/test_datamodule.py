"""The DataModule's training-side options: sampling, class weights, age shifts, train stats."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from mask_age_gender.config import CONF
from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.data.stats import channel_stats
from mask_age_gender.inference.ensemble import labelled_photos, validation_photos

BASE = {"normalize": "backbone", "prepare": {}, "augment": {}}


# conf/data/default.yaml's values (its defaults), unresolved: the interpolated ones are set below
DATA = OmegaConf.to_container(OmegaConf.load(CONF / "data" / "default.yaml"))
DEFAULTS = dict(DATA)


def datamodule(archive: Path, transform: dict = BASE, **options) -> FaceDataModule:
    fixed = {"root": str(archive), "seed": 42, "cache": "none", "cache_dir": None}
    small = {"image_size": (32, 24), "num_workers": 0, "mean": [0.5] * 3, "std": [0.5] * 3}
    data = {**DEFAULTS, **fixed, **small, **options}
    dm = FaceDataModule.from_config(data, transform, data.pop("mean"), data.pop("std"))
    dm.setup("fit")
    return dm


@pytest.mark.parametrize(("balance", "column"), [("class", "label"), ("age", "age_group")])
def test_weighted_sampler_balances_what_it_is_asked_to(
    archive: Path, balance: str, column: str
) -> None:
    dm = datamodule(archive, sampler="weighted", sampler_balance=balance)
    groups = dm.train_table[column].to_numpy()
    sampler = dm.train_dataloader().sampler
    drawn = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn.append(groups[[index for index, _ in sampler]])
    drawn = np.concatenate(drawn)
    shares = np.bincount(drawn) / len(drawn)
    present = np.unique(groups)
    assert np.allclose(shares[present], 1 / len(present), atol=0.03), shares
    natural = np.bincount(groups)[present] / len(groups)
    assert natural.max() - natural.min() > 0.1  # the split itself is far from balanced


def test_class_weights_come_from_the_training_split_only(archive: Path) -> None:
    dm = datamodule(archive)
    weights = dm.class_weights({"class": 18, "mask": 3, "gender": 2, "age": 3})
    labels = dm.train_table["label"].to_numpy()
    counts = np.bincount(labels, minlength=18)
    expected = len(labels) / (18 * np.maximum(counts, 1))
    assert np.allclose(weights["class"], expected, rtol=1e-5)
    mask_counts = np.bincount(labels // 6, minlength=3)
    assert np.allclose(weights["mask"], len(labels) / (3 * mask_counts), rtol=1e-5)
    all_labels = np.concatenate([labels, dm.val_table["label"].to_numpy()])
    with_val = len(all_labels) / (18 * np.maximum(np.bincount(all_labels, minlength=18), 1))
    assert not np.allclose(weights["class"], with_val)


def test_boundary_ages_leave_training_but_not_validation(archive: Path) -> None:
    full = datamodule(archive, n_folds=2)
    dropped = datamodule(archive, n_folds=2, drop_boundary_ages=3)
    near = lambda ages: ((ages >= 27) & (ages < 33)) | ((ages >= 57) & (ages < 63))  # noqa: E731
    assert near(full.train_table["age"]).any()
    assert not near(dropped.train_table["age"]).any()
    assert len(dropped.train_table) == (~near(full.train_table["age"])).sum()
    assert dropped.val_table.equals(full.val_table)


def test_train_age_bins_relabel_training_only(archive: Path) -> None:
    dm = datamodule(archive, n_folds=2, train_age_bins=[30, 40])
    train, val = dm.train_table, dm.val_table
    assert (train["age_group"] == np.digitize(train["age"], [30, 40])).all()
    assert (train["label"] % 3 == train["age_group"]).all()
    assert (val["age_group"] == np.digitize(val["age"], [30, 60])).all()


def test_train_stats_are_cached_per_split(archive: Path, tmp_path: Path) -> None:
    recipe = {**BASE, "normalize": "train_stats"}
    folds = [datamodule(archive, transform=recipe, fold=f, cache_dir=str(tmp_path)) for f in (0, 1)]
    assert len(list(tmp_path.glob("stats-*.json"))) == 2
    assert folds[0].mean != folds[1].mean
    paths = folds[0].train_table["path"].tolist()
    cached = channel_stats(paths, folds[0]._pipeline("val"), tmp_path)
    assert cached == (folds[0].mean, folds[0].std)


def test_train_stats_fill_the_photo_cache_and_normalise_training(archive: Path) -> None:
    """The statistics are computed through the training set's memory cache (each photo decoded
    once) and the training pipeline then normalises with them, not with the placeholders."""
    recipe = {**BASE, "normalize": "train_stats"}
    dm = datamodule(archive, transform=recipe, cache="memory", normalize_on="loader")
    train_set = dm._datasets["train"]
    assert train_set.photos.filled.all()
    assert dm.mean != (0.5,) * 3
    image, _, _ = train_set[0]
    prepared = train_set.photos(0) / 255.0
    expected = (prepared - np.array(dm.mean)) / np.array(dm.std)
    assert np.allclose(image.permute(1, 2, 0).numpy(), expected, atol=1e-4)


def test_unknown_sampler_is_refused(archive: Path) -> None:
    with pytest.raises(ValueError, match="data.sampler must be one of"):
        datamodule(archive, sampler="balanced")


def test_seed_varies_training_and_split_seed_the_people(archive: Path) -> None:
    """``seed`` orders and augments training; only ``split_seed`` (and the fold) draws who
    validates, so a seed sweep validates on the same people."""
    people = {
        (seed, split_seed): set(
            datamodule(archive, seed=seed, split_seed=split_seed).val_table["person"]
        )
        for seed, split_seed in ((1, 42), (2, 42), (1, 7))
    }
    assert people[1, 42] == people[2, 42]
    assert people[1, 42] != people[1, 7]
    orders = [
        list(iter(datamodule(archive, seed=seed).train_dataloader().sampler)) for seed in (1, 2)
    ]
    assert orders[0] != orders[1]


def test_label_corrections_change_labels_not_the_validation_people(
    archive: Path, tmp_path: Path
) -> None:
    """The folds are drawn from the archive's own labels: a run with ``label_overrides``
    validates on the people a run without validates on, with the corrected labels; and the
    ensemble's split of a checkpoint (``validation_photos``) agrees with its training."""
    plain = datamodule(archive)
    table = pd.concat([plain.train_table, plain.val_table])
    people = table.groupby("person")[["gender", "age"]].first().iloc[::3]  # 10 of 30
    fixes = pd.DataFrame(
        {
            "person": people.index,
            "gender": np.where(people["gender"] == 1, "male", "female"),  # the other one
            "age": np.where(people["age"] < 30, 70, 20),  # another age group
        }
    )
    fixes.to_csv(tmp_path / "fixes.csv", index=False)
    fixed = datamodule(archive, label_overrides=str(tmp_path / "fixes.csv"))
    corrections = fixed.stages.labelled.corrections
    assert corrections["gender"] == corrections["age"] == len(people)
    for stage in ("train", "val"):
        before, after = getattr(plain, f"{stage}_table"), getattr(fixed, f"{stage}_table")
        assert set(after["person"]) == set(before["person"]), stage
        assert after["path"].tolist() == before["path"].tolist(), stage
        labels = after.groupby("person")[["gender", "age"]].first()
        corrected = fixes.set_index("person").reindex(labels.index).dropna()
        assert len(corrected) > 0, stage  # corrected people on both sides
        assert (labels.loc[corrected.index, "age"] == corrected["age"]).all(), stage
        flipped = labels.loc[corrected.index, "gender"] != people.loc[corrected.index, "gender"]
        assert flipped.all(), stage
    module = SimpleNamespace(hparams=SimpleNamespace(config=checkpoint_config(fixed)))
    val = validation_photos(labelled_photos(module), module)
    pd.testing.assert_frame_equal(val, fixed.val_table)


def checkpoint_config(dm: FaceDataModule) -> dict:
    """The ``data`` and ``transform`` config a checkpoint of ``dm``'s run would keep."""
    data = {**DEFAULTS, "root": str(dm.root), "seed": 42}
    data |= {"cache": "none", "cache_dir": None, "image_size": [32, 24], "num_workers": 0}
    data |= {"mean": [0.5] * 3, "std": [0.5] * 3, "label_overrides": dm.archive.label_overrides}
    return {"data": data, "transform": BASE}


def test_a_relative_or_home_root_reads_the_same_photos_as_the_absolute_one(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Photo paths are absolute whatever ``data.root`` looks like: face boxes and cached
    photos are found by them, in training and in ``predict split=val|oof`` alike."""
    absolute = datamodule(archive)
    monkeypatch.chdir(archive.parent)
    monkeypatch.setenv("HOME", str(archive.parent))
    for root in (archive.name, f"~/{archive.name}"):
        dm = datamodule(Path(root))
        pd.testing.assert_frame_equal(dm.val_table, absolute.val_table)
        config = checkpoint_config(dm) | {"data": {**checkpoint_config(dm)["data"], "root": root}}
        module = SimpleNamespace(hparams=SimpleNamespace(config=config))
        pd.testing.assert_frame_equal(
            validation_photos(labelled_photos(module), module), absolute.val_table
        )
