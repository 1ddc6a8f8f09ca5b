"""What every phase of the benchmark builds the same way: settings, config, archive, model."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import timm
import torch
from lightning_fabric import Fabric
from omegaconf import OmegaConf
from torch.optim import Optimizer

from mask_age_gender.config import CONF
from mask_age_gender.config import compose_config as compose
from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.data.synthetic import generate_archive
from mask_age_gender.data.workers import cpu_count
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.models.optim import build_optimizer
from mask_age_gender.training.build import build_datamodule, fitted_config

log = logging.getLogger(__name__)
ARCHIVE = Path("data/bench/synthetic-384x512")  # generated once, under the ignored data/
ARCHIVE_SIZE = (384, 512)  # width, height: the real photos'
ARCHIVE_PEOPLE = 400  # ~2240 training photos: 4× the default photos for --scale
ARCHIVE_EVAL_PEOPLE = 40


@dataclass
class Settings:
    """One measurement's settings; plain values, so the training subprocess gets them as JSON."""

    overrides: list[str]  # Hydra overrides of the training config (model, data.*, --set …)
    photos: int  # training photos: the training table is cut to this many
    warmup: int = 3  # batches before the clock starts, when warm_epochs is 0
    warm_epochs: int = 1  # full passes before the clock starts (fills data.cache), every phase
    epochs: int = 1  # measured passes over the photos
    threads: int = field(default_factory=lambda: cpu_count())

    def batches(self, datamodule: FaceDataModule) -> tuple[int, int]:
        """(warm-up, measured) batches of the training photos, the same for every phase: the
        model alone speeds up over its first ~10 steps too (allocator, oneDNN kernels)."""
        per_epoch = len(datamodule.train_table) // datamodule.batch_size  # full batches
        warm = self.warm_epochs * per_epoch if self.warm_epochs else self.warmup
        return warm, self.epochs * per_epoch


def bench_archive(path: Path = ARCHIVE) -> Path:
    """The synthetic archive at the real photo size, generated on first use (whole or not at
    all: it is written beside and renamed)."""
    if (path / "train" / "train.csv").is_file():
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log.info("generating the benchmark archive %s (once)", path)
    generate_archive(partial, ARCHIVE_PEOPLE, ARCHIVE_EVAL_PEOPLE, seed=0, size=ARCHIVE_SIZE)
    partial.rename(path)
    return path


def model_overrides(model: str) -> list[str]:
    """``--model``: a conf/model option (``resnet50``) as is, else any name timm knows
    (``test_resnet``, timm's smoke-test model) through ``model=timm``."""
    if (CONF / "model" / f"{model}.yaml").is_file():
        return [f"model={model}"]
    if timm.is_model(model):
        return ["model=timm", f"model.name={model}"]
    options = ", ".join(sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
    raise ValueError(f"--model {model}: neither a conf/model option ({options}) nor a timm model")


def compose_config(overrides: list[str], output_dir: Path) -> dict[str, Any]:
    """The real training config with ``overrides``, resolved, writing to ``output_dir``."""
    return OmegaConf.to_container(compose(overrides, output_dir), resolve=True)


def limited_datamodule(config: dict[str, Any], photos: int) -> FaceDataModule:
    """The project's DataModule (read, checked, split), its training table cut to ``photos``."""
    datamodule = build_datamodule(config)
    table = datamodule.train_table
    if len(table) < photos:
        raise ValueError(
            f"{datamodule.root}: its training split has {len(table)} photos, fewer than the "
            f"{photos} asked; ask fewer (--photos) or give a larger archive (--archive)"
        )
    if photos < datamodule.batch_size:
        raise ValueError(f"--photos {photos} is less than one batch ({datamodule.batch_size})")
    datamodule.stages.train = table.iloc[:photos].reset_index(drop=True)
    return datamodule


def prepared(settings: Settings, run_dir: Path) -> tuple[dict[str, Any], FaceDataModule]:
    """The run's config (fitted to its data) and data module, seeded as ``train`` seeds."""
    torch.set_num_threads(settings.threads)
    torch.set_flush_denormal(True)
    config = compose_config(settings.overrides, run_dir)
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    datamodule = limited_datamodule(config, settings.photos)
    return fitted_config(config, datamodule), datamodule


def fabric_for(config: dict[str, Any]) -> Fabric:
    """Device and precision as the configured Trainer would pick them, for the plain loops."""
    trainer = config["trainer"]
    return Fabric(
        accelerator=trainer.get("accelerator", "auto"),
        devices=1,
        precision=trainer.get("precision", "32-true"),
    )


def model_for(config: dict[str, Any], fabric: Fabric) -> tuple[FaceClassifier, Optimizer]:
    """The configured classifier and optimizer on the Fabric's device, with ``model.channels_last``
    and ``model.compile`` applied as ``FaceClassifier.setup`` applies them under a Trainer."""
    module = FaceClassifier(config)
    module.apply_runtime_options(on_gpu=fabric.device.type == "cuda")
    optimizer = build_optimizer(module, config["optimizer"])
    module, optimizer = fabric.setup(module, optimizer)
    return module, optimizer


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
