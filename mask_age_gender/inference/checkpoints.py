"""A checkpoint back as a model, and its class probabilities for photos: as a training run
validated (``predict_as_trained``: its Trainer's precision and device) or in float32
(``predict_proba``: the ``predict`` command, with test-time augmentation).

Each checkpoint is rebuilt from the config it carries (backbone, head, transform, image size)
and loaded with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.data.workers import default_workers
from mask_age_gender.errors import UserMistake
from mask_age_gender.models.module import FaceClassifier

log = logging.getLogger(__name__)
TTA_MODES = ("none", "hflip")


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
    normalize_on = data.get("normalize_on", "loader")  # runs before the option: the loader
    transform = build_transform(
        recipe, data["image_size"], data["mean"], data["std"], False, normalize_on
    )
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
    for images, *_ in tqdm(loader, desc=desc, leave=False, disable=None):  # bar: on a terminal
        images = images.to(module.device)
        probs = module.predict_proba(images)
        if tta == "hflip":
            probs = (probs + module.predict_proba(images.flip(dims=[3]))) / 2
        chunks.append(probs.float().cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 18), dtype=np.float32)


def predict_as_trained(
    trainer: pl.Trainer, module: FaceClassifier, loader: DataLoader
) -> np.ndarray:
    """N × 18 class probabilities computed the way ``trainer`` validated: a Trainer with its
    precision (bf16-mixed autocast, say) on its device runs ``predict_step``. It is a Trainer
    of one process, so the rank that writes the run's files can call it alone; the strategy
    (DDP, say) changes how gradients are shared, not what an eval-mode forward pass gives."""
    device = trainer.strategy.root_device
    # Lightning's "Predicting" bar (Rich, on stdout) only on a terminal: in a file, a line
    live_bar = trainer.progress_bar_callback is not None and sys.stdout.isatty()
    if not live_bar:
        log.info("predicting %d photos", len(loader.dataset))
    # the training Trainer has said which device it runs on: not again for each prediction
    banner = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    level = banner.level
    banner.setLevel(logging.WARNING)
    try:
        predictor = pl.Trainer(
            accelerator={"cuda": "gpu"}.get(device.type, device.type),
            devices=[device.index or 0] if device.type == "cuda" else 1,
            precision=trainer.precision,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=live_bar,
        )
    finally:
        banner.setLevel(level)
    batches = predictor.predict(module, dataloaders=loader)
    return torch.cat(batches).numpy() if batches else np.zeros((0, 18), dtype=np.float32)
