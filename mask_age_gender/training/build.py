"""The parts of a training run built from its resolved config: the data module, the config the
model is built from (with what the data decided), callbacks, loggers and the Trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from mask_age_gender.config import app_choices
from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.errors import UserMistake
from mask_age_gender.models.module import backbone_normalization
from mask_age_gender.training.callbacks import AtomicCheckpointIO, run_callbacks

# transform.normalize: none (0–1 pixels), backbone (its mean/std, unless data.mean/std are set),
# train_stats (the training split's mean/std, which FaceDataModule.setup computes)
NORMALIZE = ("none", "backbone", "train_stats")


class DataNotFound(UserMistake, FileNotFoundError):
    """No archive where ``data.root`` points."""


def build_datamodule(config: dict[str, Any]) -> FaceDataModule:
    """The data module of ``config``, prepared (its one-time work done or found done: face
    boxes, training-set statistics, disk cache) and set up (the archive read, checked, split):
    every archive problem surfaces here, before the run writes anything. Every process of a
    run calls it, DDP ranks included: the statistics decide the model's normalisation."""
    data = config["data"]
    check_archive_exists(Path(data["root"]))
    mean, std = configured_normalization(config)
    datamodule = FaceDataModule.from_config(data, config["transform"], mean, std)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def configured_normalization(config: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The input mean and std before the data is read: ``transform.normalize: none`` is pixels/255
    (on either ``data.normalize_on`` path, and in ``predict``); otherwise ``data.mean/std`` when
    set, else the backbone's. ``train_stats`` replaces them with the training split's in setup."""
    normalize = config["transform"]["normalize"]
    if normalize not in NORMALIZE:
        raise ValueError(f"transform.normalize must be one of {NORMALIZE}, got {normalize!r}")
    if normalize == "none":
        return [0.0] * 3, [1.0] * 3
    data = config["data"]
    if data.get("mean") is None or data.get("std") is None:
        return backbone_normalization(config["model"])
    return list(data["mean"]), list(data["std"])


def fitted_config(config: dict[str, Any], datamodule: FaceDataModule) -> dict[str, Any]:
    """``config`` as the model is built from it, and as its checkpoints carry it to ``predict``:
    with the normalisation the data module settled on, its paths made absolute (``predict
    split=val`` finds the same people) and, for ``loss.class_weights=inverse_frequency``, the
    class weights of the training split."""
    data = {**config["data"], "root": str(datamodule.root)}
    data["mean"], data["std"] = datamodule.normalization()
    if data.get("label_overrides"):
        data["label_overrides"] = str(Path(data["label_overrides"]).resolve())
    loss = dict(config["loss"])
    if loss.get("class_weights") == "inverse_frequency":
        tasks = instantiate(config["head"])(in_features=1).tasks
        loss["class_weights"] = datamodule.class_weights(tasks)
    return {**config, "data": data, "loss": loss}


def build_trainer(config: dict[str, Any], run_dir: Path) -> pl.Trainer:
    """The configured Trainer with the configured callbacks and loggers, plus what every run gets
    (clean stops, RNG state in checkpoints, checkpoints written whole)."""
    torch.set_flush_denormal(True)  # denormal weights late in training slow CPU steps manifold
    callbacks = build_callbacks(config.get("callbacks") or {}) + run_callbacks(run_dir)
    loggers = [instantiate(c) for c in (config.get("logger") or {}).values() if c]
    return instantiate(
        config["trainer"], callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()]
    )


def build_callbacks(options: dict[str, Any]) -> list[pl.Callback]:
    """Every callback config with a ``_target_`` (``callbacks/ema=on`` among them); entries set
    to null (``callbacks.progress_bar=null``) or empty (``callbacks/ema=none``) add nothing."""
    return [instantiate(c) for c in options.values() if isinstance(c, dict) and c]


def check_archive_exists(root: Path) -> None:
    if not (root / "train" / "train.csv").is_file():
        raise DataNotFound(
            f"no archive at data.root={root.resolve()}: expected train/train.csv and "
            "train/images/ there (eval/ optional). Point data.root=DIR at the competition "
            "archive, or run `make train` to train the demo on a generated synthetic archive."
        )


def hydra_choices() -> dict[str, str | None]:
    """The option chosen in each config group (model, head, loss, …), for the ledger."""
    if not HydraConfig.initialized():
        return {}
    return app_choices(HydraConfig.get().runtime.choices)
