"""The parts of a training run built from its config: data module, callbacks, run choices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from mask_age_gender.config import app_choices
from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.errors import UserMistake
from mask_age_gender.models.module import backbone_normalization

# transform.normalize: none (0–1 pixels), backbone (its mean/std, unless data.mean/std are set),
# train_stats (the training split's mean/std, which FaceDataModule.setup computes)
NORMALIZE = ("none", "backbone", "train_stats")


class DataNotFound(UserMistake, FileNotFoundError):
    """No archive where ``data.root`` points."""


def build_datamodule(config: dict[str, Any]) -> FaceDataModule:
    """Read, check and split the archive; record in ``config`` what the data decided
    (input normalisation, class weights) so the checkpoint carries it to ``predict``."""
    data = config["data"]
    normalize = config["transform"].get("normalize", "backbone")
    if normalize not in NORMALIZE:
        raise ValueError(f"transform.normalize must be one of {NORMALIZE}, got {normalize!r}")
    if normalize == "none":  # pixels/255 on either data.normalize_on path, and in predict
        data["mean"], data["std"] = [0.0] * 3, [1.0] * 3
    elif data.get("mean") is None or data.get("std") is None:
        data["mean"], data["std"] = backbone_normalization(config["model"])
    datamodule: FaceDataModule = instantiate(
        {**data, "transform": config["transform"]}, _recursive_=False
    )
    datamodule.setup("fit")  # every archive problem surfaces here, before anything is written
    data["mean"], data["std"] = list(datamodule.mean), list(datamodule.std)
    data["root"] = str(datamodule.root)  # absolute: `predict split=val` finds the same people
    if data.get("label_overrides"):
        data["label_overrides"] = str(Path(data["label_overrides"]).resolve())
    if config["loss"].get("class_weights") == "inverse_frequency":
        tasks = instantiate(config["head"])(in_features=1).tasks
        config["loss"]["class_weights"] = datamodule.class_weights(tasks)
    return datamodule


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
