"""Submission from one checkpoint or an ensemble: ``ImageID,ans`` in ``eval/info.csv`` order.

    python -m mask_age_gender.predict ckpt=PATH data.root=DIR output=FILE [tta=hflip]
    python -m mask_age_gender.predict 'ckpt=[A,B,C]' ...   # soft vote: mean of probabilities

Each checkpoint is rebuilt from the config it carries (backbone, head, transform, image size)
and loaded with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, ListConfig
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mask_age_gender.data.archive import read_eval
from mask_age_gender.data.datamodule import default_workers
from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.files import write_csv_atomic
from mask_age_gender.models.module import FaceClassifier

log = logging.getLogger(__name__)
TTA_MODES = ("none", "hflip")


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the data or the other checkpoints of an ensemble."""


def load_classifier(path: str | Path) -> FaceClassifier:
    """The model of a checkpoint, in eval mode, on the CPU; no code in the file is run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    try:
        config = copy.deepcopy(checkpoint["hyper_parameters"]["config"])
    except KeyError as err:
        raise CheckpointMismatch(f"{path} is not a mask_age_gender checkpoint") from err
    config["model"].update(pretrained=False, weights=None)  # the state dict brings the weights
    module = FaceClassifier(config)
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    missing = [key for key in missing if not key.startswith("train_metrics.")]  # older runs
    if missing or unexpected:
        raise CheckpointMismatch(
            f"{path}: weights do not fit the model its config describes "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return module.eval()


def head_name(module: FaceClassifier) -> str:
    return type(module.head).__name__.removesuffix("Head").lower()


def eval_loader(
    module: FaceClassifier, paths: list[str], batch_size: int, num_workers: int | None
) -> DataLoader:
    """The photos through the checkpoint's own deterministic transform."""
    data = module.hparams.config["data"]
    recipe = module.hparams.config["transform"]
    transform = build_transform(recipe, data["image_size"], data["mean"], data["std"], train=False)
    dataset = FaceDataset(paths, None, transform)
    workers = default_workers() if num_workers is None else num_workers
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers)


@torch.inference_mode()
def predict_proba(
    module: FaceClassifier, loader: DataLoader, tta: str = "none", desc: str = "predicting"
) -> np.ndarray:
    """N × 18 class probabilities; ``tta='hflip'`` averages each photo with its mirror image."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    module.eval()
    chunks = []
    for images, *_ in tqdm(loader, desc=desc, leave=False):
        images = images.to(module.device)
        probs = module.predict_proba(images)
        if tta == "hflip":
            probs = (probs + module.predict_proba(images.flip(dims=[3]))) / 2
        chunks.append(probs.float().cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 18), dtype=np.float32)


def check_ensemble(models: dict[str, FaceClassifier], expect: dict[str, Any]) -> None:
    """Refuse checkpoints whose labels differ from each other or from what the user asked."""
    age_bins = {path: tuple(m.hparams.config["data"]["age_bins"]) for path, m in models.items()}
    if len(set(age_bins.values())) > 1:
        raise CheckpointMismatch(f"checkpoints use different data.age_bins: {age_bins}")
    for path, module in models.items():
        trained = {
            "head": head_name(module),
            "age_bins": list(age_bins[path]),
            "image_size": list(module.hparams.config["data"]["image_size"]),
        }
        for key, wanted in expect.items():
            if wanted is not None and list_or_value(wanted) != trained[key]:
                raise CheckpointMismatch(
                    f"checkpoint {path} was trained with {key}={trained[key]}; "
                    f"this prediction asks {key}={list_or_value(wanted)}"
                )


def list_or_value(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else value


def predict_archive(cfg: DictConfig) -> pd.DataFrame:
    """Predict every row of ``eval/info.csv`` and write the submission; returns it."""
    ckpts = [str(c) for c in (cfg.ckpt if isinstance(cfg.ckpt, ListConfig) else [cfg.ckpt])]
    models = {path: load_classifier(path) for path in ckpts}
    check_ensemble(models, dict(cfg.expect))
    root = Path(cfg.data.root).expanduser().resolve()
    table = read_eval(root, cfg.data.verify_images)
    if table is None:
        raise FileNotFoundError(f"no eval/ folder under {root}: nothing to predict")
    device = torch.device(cfg.device if cfg.device != "auto" else _best_device())
    probs = np.zeros((len(table), 18), dtype=np.float64)
    for path, module in models.items():
        loader = eval_loader(module, list(table["path"]), cfg.batch_size, cfg.num_workers)
        probs += predict_proba(module.to(device), loader, cfg.tta, desc=Path(path).name)
    submission = pd.DataFrame({"ImageID": table["image_id"], "ans": probs.argmax(axis=1)})
    if len(submission) != len(table) or not submission["ImageID"].equals(table["image_id"]):
        raise RuntimeError("predictions do not line up with eval/info.csv; nothing written")
    write_csv_atomic(cfg.output, submission)
    return submission


def _best_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    submission = predict_archive(cfg)
    log.info("wrote %d predictions to %s", len(submission), Path(cfg.output).resolve())


if __name__ == "__main__":
    main()
