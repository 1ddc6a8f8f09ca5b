"""Every option of every config group composes with the rest and resolves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mask_age_gender.data.transforms import build_transform
from mask_age_gender.models.losses import HeadLoss
from mask_age_gender.models.optim import build_optimizer, build_scheduler, warmup_cosine
from mask_age_gender.training import resolvers

from .conftest import CONF, compose_config

GROUPS = ["data", "model", "head", "loss", "optimizer", "scheduler", "transform", "trainer"]
GROUPS += ["logger", "callbacks", "experiment", "mix", "hparams_search"]
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
        pipeline = build_transform(recipe, [96, 72], [0.5] * 3, [0.5] * 3, train, "device")
        image = pipeline(image=photo)["image"]
        assert image.shape == (3, 96, 72) and image.dtype == torch.uint8  # the model normalises
    deterministic = build_transform(recipe, [96, 72], [0.5] * 3, [0.5] * 3, False, "device")
    random_steps = {step["_target_"].rsplit(".", 1)[1] for step in recipe["augment"].values()}
    assert not random_steps & {type(t).__name__ for t in deterministic.transforms}
    first, second = (deterministic(image=photo)["image"] for _ in range(2))
    assert (first == second).all()


@pytest.mark.parametrize("scheduler", [p.stem for p in sorted((CONF / "scheduler").glob("*.yaml"))])
def test_every_optimizer_and_scheduler_builds_and_steps(scheduler: str, tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    for option in ("adam", "adamw", "sgd"):
        cfg = compose_config([f"optimizer={option}", f"scheduler={scheduler}"], tmp_path)
        config = OmegaConf.to_container(cfg, resolve=True)
        optimizer = build_optimizer(model, config["optimizer"])
        assert optimizer.defaults["lr"] == cfg.optimizer.lr
        schedule = build_scheduler(optimizer, config["scheduler"], total_steps=10)
        if scheduler == "none":
            assert schedule is None
            continue
        for _ in range(10):
            optimizer.step()
            if schedule["interval"] == "step":
                schedule["scheduler"].step()
        if schedule["interval"] == "epoch":
            schedule["scheduler"].step(*([1.0] if scheduler == "plateau" else []))


def test_weight_decay_can_spare_norms_and_biases(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    cfg = compose_config(["optimizer=adamw", "optimizer.exclude_norm_bias=true"], tmp_path)
    optimizer = build_optimizer(model, OmegaConf.to_container(cfg.optimizer))
    decay = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in optimizer.param_groups}
    assert decay == {0.0: 4 + 4 + 4, cfg.optimizer.weight_decay: 16}  # biases + BN; weight


def test_warmup_cosine_rises_then_decays() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, total_steps=100, warmup_fraction=0.1, min_lr_ratio=0.01)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.1) and max(rates) == pytest.approx(1.0)
    assert rates.index(max(rates)) == 9
    assert rates[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))


@pytest.mark.parametrize("loss", [p.stem for p in sorted((CONF / "loss").glob("*.yaml"))])
@pytest.mark.parametrize("experiment", ["demo", "strong"])
def test_every_loss_replaces_an_experiments_loss_whole(
    experiment: str, loss: str, tmp_path: Path
) -> None:
    cfg = compose_config([f"experiment={experiment}", f"loss={loss}"], tmp_path)
    options = OmegaConf.to_container(cfg.loss, resolve=True)
    weights = {"class": [1.0] * 18} if options["class_weights"] else None
    HeadLoss({"class": 18}, instantiate(options["criterion"]), class_weights=weights)
