"""A checkpoint back as a model, and the checks that the checkpoints of an ensemble fit each
other and what the user expects.

Each checkpoint is rebuilt from the config it carries (backbone, head, transform, image size)
and loaded with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from mask_age_gender.config import list_or_value
from mask_age_gender.errors import UserMistake
from mask_age_gender.models.module import FaceClassifier


class CheckpointMismatch(UserMistake, ValueError):
    """A checkpoint that does not fit the data or the other checkpoints of an ensemble."""


class CheckpointNotFound(UserMistake, FileNotFoundError):
    """``ckpt=PATH`` names no file."""


def load_classifier(path: str | Path) -> FaceClassifier:
    """The model of a checkpoint, in eval mode, on the CPU; no code in the file is run."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFound(f"checkpoint {path} not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    try:
        config = copy.deepcopy(checkpoint["hyper_parameters"]["config"])
    except KeyError as err:
        raise CheckpointMismatch(f"{path} is not a mask_age_gender checkpoint") from err
    config["model"].update(pretrained=False, weights=None)  # the state dict brings the weights
    module = FaceClassifier(config)
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointMismatch(
            f"{path}: weights do not fit the model its config describes "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return module.eval()


def check_checkpoints(models: dict[str, FaceClassifier], expect: dict[str, Any]) -> None:
    """Refuse checkpoints whose labels differ from each other's, or that were trained with
    another head, age bins or image size than ``expect`` asks (``None``: any)."""
    age_bins = {path: tuple(m.hparams.config["data"]["age_bins"]) for path, m in models.items()}
    if len(set(age_bins.values())) > 1:
        raise CheckpointMismatch(f"checkpoints use different data.age_bins: {age_bins}")
    for path, module in models.items():
        trained = {
            "head": type(module.head).__name__.removesuffix("Head").lower(),  # as head= names it
            "age_bins": list(age_bins[path]),
            "image_size": list(module.hparams.config["data"]["image_size"]),
        }
        for key, wanted in expect.items():
            if wanted is not None and list_or_value(wanted) != trained[key]:
                raise CheckpointMismatch(
                    f"checkpoint {path} was trained with {key}={trained[key]}; "
                    f"this prediction asks {key}={list_or_value(wanted)}"
                )
