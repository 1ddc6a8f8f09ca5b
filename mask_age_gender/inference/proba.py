"""Class probabilities of photos: the one prediction path, Lightning's ``Trainer.predict``.

``predict_proba`` runs a checkpoint's module over a loader on the device and in the precision
it is given: the ``predict`` command asks float32 (``32-true``) on ``device=auto|cpu|cuda``,
with test-time augmentation if asked; the training run's own predictions
(``predict_as_trained``) take its Trainer's device and precision, so they score the best
checkpoint exactly as validation did. ``eval_loader`` feeds photos through the checkpoint's
own deterministic transform, each cut to its face where the checkpoint trained on face crops.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.faces.resolve import boxes_for, detect_missing, face_boxes_table
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.data.workers import default_workers
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.resolvers import archive_cache, cache_home

log = logging.getLogger(__name__)
TTA_MODES = ("none", "hflip")
# What a Trainer made for one prediction would say again for each checkpoint: its device
# banners, hints at the user's own device=cpu and num_workers, and torch's FutureWarning about
# Lightning's own code (nothing a user can act on).
QUIET_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda")
QUIET_WARNINGS = (
    ".*does not have many workers",
    "GPU available but not used",
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated",
)


def eval_loader(
    module: FaceClassifier,
    paths: list[str],
    batch_size: int,
    num_workers: int | None,
    root: str | Path | None = None,
    face_boxes: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> DataLoader:
    """The photos through the checkpoint's own deterministic transform, in ``paths`` order;
    ``num_workers=None``: as many workers as the CPUs allow. A face-crop checkpoint crops each
    photo to its box (:func:`photo_boxes`): ``root`` is the archive the photos are in (None:
    the checkpoint's), ``face_boxes`` a boxes file for it (``predict data.face_boxes=FILE``),
    ``cache_dir`` its cache folder (``predict``'s ``data.cache_dir``)."""
    data = module.hparams.config["data"]
    transform = build_transform(
        module.hparams.config["transform"],
        data["image_size"],
        data["mean"],
        data["std"],
        False,
        data["normalize_on"],
    )
    boxes = (
        photo_boxes(module, paths, root, face_boxes, cache_dir) if transform.crops_faces else None
    )
    dataset = FaceDataset(paths, None, transform, boxes=boxes)
    workers = default_workers() if num_workers is None else num_workers
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers)


def photo_boxes(
    module: FaceClassifier,
    paths: list[str],
    root: str | Path | None = None,
    face_boxes: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """Each photo's face box for a face-crop checkpoint, by the runs' rule (``faces/resolve.py``):
    ``face_boxes`` if given; on the archive the checkpoint trained on, its own
    ``data.face_boxes`` and cache folder; on another archive, the detector's file in
    ``cache_dir`` (None: that archive's folder of the user cache), detected first where
    missing. Never none: refused with what to do."""
    data = module.hparams.config["data"]
    trained = Path(data["root"]).expanduser().resolve()
    root = trained if root is None else Path(root).expanduser().resolve()
    own = root == trained  # a boxes file and cache folder belong to their archive
    if face_boxes is None and own:
        face_boxes = data.get("face_boxes")
    if own:
        cache_dir = data.get("cache_dir")
    elif cache_dir is None:
        cache_dir = archive_cache(cache_home(), str(root))
    detect_missing(root, face_boxes, cache_dir, paths)  # predict's one-time work
    table, source = face_boxes_table(root, face_boxes, cache_dir)
    return boxes_for(paths, table, root, source, "photos to predict")


def resolve_device(name: str) -> torch.device:
    """``device=auto|cpu|cuda[:N]`` as a torch device; ``auto``: the GPU if there is one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def predict_proba(
    module: FaceClassifier,
    loader: DataLoader,
    device: str | torch.device = "cpu",
    precision: str = "32-true",
    tta: str = "none",
    progress: bool = True,
    name: str = "",
    embed: bool = False,
) -> np.ndarray:
    """N × 18 class probabilities (float32, on the CPU) of the loader's photos, in its order;
    with ``embed``, N × (18 + D): each photo's embedding after them (``people.split_outputs``).

    A Trainer of one process on ``device`` in ``precision`` runs ``module.predict_step``;
    ``tta='hflip'`` averages each photo with its mirror image. ``progress``: Lightning's bar
    on a terminal, otherwise one start line in the log (naming ``name``, a checkpoint say).
    The module comes back on the CPU.
    """
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    device = torch.device(device)
    live_bar = progress and _on_terminal()
    if progress and not live_bar:
        log.info("predicting %d photos%s", len(loader.dataset), f" with {name}" if name else "")
    with _quiet_lightning():
        trainer = pl.Trainer(
            accelerator={"cuda": "gpu"}.get(device.type, device.type),
            devices=[device.index or 0] if device.type == "cuda" else 1,
            precision=precision,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=live_bar,
        )
        module.predict_tta, module.predict_embed = tta, embed
        try:
            batches = trainer.predict(module, dataloaders=loader)
        finally:
            del module.predict_tta, module.predict_embed  # back to the class's defaults
    return torch.cat(batches).numpy() if batches else np.zeros((0, 18), dtype=np.float32)


def predict_as_trained(
    trainer: pl.Trainer, module: FaceClassifier, loader: DataLoader, embed: bool = False
) -> np.ndarray:
    """N × 18 class probabilities (with ``embed``, each photo's embedding after them, as
    ``predict_proba`` gives) computed the way ``trainer`` validated: its precision
    (bf16-mixed autocast, say) on its device. A Trainer of one process, so the rank that
    writes the run's files can call it alone; the strategy (DDP, say) changes how gradients
    are shared, not what an eval-mode forward pass gives."""
    return predict_proba(
        module,
        loader,
        device=trainer.strategy.root_device,
        precision=trainer.precision,
        progress=trainer.progress_bar_callback is not None,
        embed=embed,
    )


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Without the device banners and data-loader hints a new Trainer gives."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _on_terminal() -> bool:
    """Whether stdout, where Lightning draws its bar, is a terminal (not a file or a pipe)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by None, or closed
        return False
