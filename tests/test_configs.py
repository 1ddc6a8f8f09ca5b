"""Every option of every config group composes with the rest and resolves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mask_age_gender import resolvers
from mask_age_gender.data.transforms import build_transform

from .conftest import CONF, compose_config

GROUPS = ["data", "model", "head", "loss", "optimizer", "scheduler", "transform", "trainer"]
GROUPS += ["logger", "callbacks", "experiment"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_resolves(group: str, option: str, tmp_path: Path) -> None:
    cfg = compose_config([f"{group}={option}"], tmp_path)
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["trainer"]["_target_"] == "pytorch_lightning.Trainer"
    assert len(config["data"]["image_size"]) == 2


def test_gpu_trainer_asks_for_mixed_precision(tmp_path: Path) -> None:
    cfg = compose_config(["trainer=gpu"], tmp_path)
    assert cfg.trainer.precision in ("bf16-mixed", "16-mixed")
    assert cfg.trainer.precision == resolvers.mixed_precision()
    ddp = compose_config(["trainer=ddp"], tmp_path).trainer
    assert ddp.strategy == "ddp" and ddp.sync_batchnorm and ddp.precision == cfg.trainer.precision


@pytest.mark.parametrize("option", [p.stem for p in sorted((CONF / "transform").glob("*.yaml"))])
def test_every_transform_gives_the_configured_size(option: str, tmp_path: Path) -> None:
    cfg = compose_config([f"transform={option}", "data.image_size=[96,72]"], tmp_path)
    recipe = OmegaConf.to_container(cfg.transform, resolve=True)
    photo = np.random.default_rng(0).integers(0, 255, size=(512, 384, 3), dtype=np.uint8)
    for train in (True, False):
        pipeline = build_transform(recipe, [96, 72], [0.5] * 3, [0.5] * 3, train=train)
        assert pipeline(image=photo)["image"].shape == (3, 96, 72)
    deterministic = build_transform(recipe, [96, 72], [0.5] * 3, [0.5] * 3, train=False)
    first, second = (deterministic(image=photo)["image"] for _ in range(2))
    assert (first == second).all()


def test_optimizer_and_scheduler_options_build(tmp_path: Path) -> None:
    params = [torch.nn.Parameter(torch.zeros(2))]
    for option in ("adam", "adamw", "sgd"):
        cfg = compose_config([f"optimizer={option}"], tmp_path)
        optimizer = instantiate(cfg.optimizer)(params=params)
        assert optimizer.defaults["lr"] == cfg.optimizer.lr
        for schedule in ("step", "cosine"):
            sched = compose_config([f"scheduler={schedule}"], tmp_path).scheduler.scheduler
            instantiate(sched)(optimizer=optimizer).step()
