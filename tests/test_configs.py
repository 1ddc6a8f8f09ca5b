"""Every option of every config group composes with the rest, resolves and sets what its file
says; schedules give the configured rates, losses replace an experiment's loss whole; `none`
options are empty; the optional, git-ignored `local` group overrides this machine's paths."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mask_age_gender import resolvers
from mask_age_gender.config import app_choices
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.inference.proba import eval_loader
from mask_age_gender.models.losses import HeadLoss
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.models.optim import build_optimizer, build_scheduler, warmup_cosine
from mask_age_gender.training.build import build_callbacks, build_datamodule, fitted_config
from mask_age_gender.training.ema import EMA

from .conftest import CONF, ROOT, TINY, compose_config

GROUPS = ["data", "model", "head", "loss", "optimizer", "scheduler", "transform", "trainer"]
GROUPS += ["logger", "callbacks", "callbacks/ema", "experiment", "mix", "hparams_search"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": leaf}`` of a nested config; lists and empty mappings are leaves."""
    if not isinstance(tree, dict) or not tree:
        return {prefix.rstrip("."): tree}
    return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}{key}.").items()}


def own_settings(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What ``conf/PATH.yaml`` says, read from its text: its values with those of the files it
    includes under them (``- base``, ``- /recipe/log``), as dotted keys of the composed config
    (``hydra.*`` left out), and the options its defaults list picks (``{group: option}``).
    The option each pick selects is another file, checked by its own case."""
    tree, picks = file_tree(path)
    values = flat(OmegaConf.to_container(tree))
    values = {key: value for key, value in values.items() if not key.startswith("hydra")}
    return values, {group: option for group, option in picks.items() if group != "hydra"}


def file_tree(path: str) -> tuple[DictConfig, dict[str, Any]]:
    """A config file's values (under its package) over those of its includes, and its picks."""
    folder = path.rsplit("/", 1)[0]
    text = (CONF / f"{path}.yaml").read_text()
    own = OmegaConf.create(text)
    included, picks = OmegaConf.create(), {}
    for entry in own.pop("defaults", []):
        if isinstance(entry, str) and entry != "_self_":  # an include
            tree, chosen = file_tree(entry[1:] if entry[0] == "/" else f"{folder}/{entry}")
            included, picks = OmegaConf.merge(included, tree), picks | chosen
        elif not isinstance(entry, str):  # `- override /model: x`, `- ema: on`
            ((key, option),) = entry.items()
            key = key.removeprefix("override ")
            picks[key[1:] if key.startswith("/") else f"{folder}/{key}"] = option
    if "# @package _global_" not in text:
        for name in reversed(folder.split("/")):
            own = OmegaConf.create({name: own})
    return OmegaConf.merge(included, own), picks


@pytest.fixture(scope="module")
def default_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """The default config (as a container) and its group choices, composed once."""
    run = tmp_path_factory.mktemp("default")
    default = OmegaConf.to_container(compose_config([], run))
    return default, dict(HydraConfig.get().runtime.choices)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_resolves_and_takes_effect(
    group: str, option: str, tmp_path: Path, default_config: tuple[dict, dict]
) -> None:
    default, choices = default_config
    default_option = choices[group]
    cfg = compose_config([f"{group}={option}"], tmp_path)
    default = {**default, "paths": {**default["paths"], "output_dir": str(tmp_path)}}
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    composed = flat(OmegaConf.to_container(cfg))
    values, picks = own_settings(f"{group}/{option}")
    assert values or picks, f"{group}/{option}.yaml sets nothing"
    assert {key: composed.get(key, "<missing>") for key in values} == values
    chosen = HydraConfig.get().runtime.choices
    assert {name: chosen.get(name, "<missing>") for name in picks} == picks
    # the option changes the default config, unless it is the default's own option
    assert (OmegaConf.to_container(cfg) == default) == (option == default_option)


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
    box = (100.0, 150.0, 260.0, 330.0)  # a face box: face_crop needs one, the others ignore it
    for train in (True, False):
        pipeline = build_transform(recipe, [96, 72], [0.5] * 3, [0.5] * 3, train, "device")
        image = pipeline(photo, box)["image"]
        assert image.shape == (3, 96, 72) and image.dtype == torch.uint8  # the model normalises
    deterministic = build_transform(recipe, [96, 72], [0.5] * 3, [0.5] * 3, False, "device")
    random_steps = {step["_target_"].rsplit(".", 1)[1] for step in recipe["augment"].values()}
    assert not random_steps & {type(t).__name__ for t in deterministic.transforms}
    first, second = (deterministic(photo, box)["image"] for _ in range(2))
    assert (first == second).all()


# Each transform option's content, which its name must say: normalisation, the deterministic
# (prepare) steps, the random (augment) steps. A new option is added here, with what it holds.
# Every one keeps the backbone's mean/std: another is set by key (transform.normalize=…), one way.
TRANSFORMS = {
    "base": ("backbone", [], []),
    "contrast": ("backbone", [], ["contrast"]),
    "center_crop": ("backbone", ["center_crop"], []),
    "center_crop300": ("backbone", ["center_crop"], []),
    "face_crop": ("backbone", ["face_crop"], []),
    "contrast_center_crop": ("backbone", ["center_crop"], ["contrast"]),
    "flip_contrast_noise": ("backbone", [], ["flip", "brightness_contrast", "noise"]),
    "light": ("backbone", [], ["flip", "brightness_contrast", "rotate", "gray", "blur"]),
    "heavy": (
        "backbone",
        [],
        ["flip", "brightness_contrast", "rotate", "gray", "blur", "color_jitter", "coarse_dropout"],
    ),
}


def test_a_transform_option_holds_what_its_name_says(tmp_path: Path) -> None:
    assert sorted(p.stem for p in (CONF / "transform").glob("*.yaml")) == sorted(TRANSFORMS)
    for option, expected in TRANSFORMS.items():
        recipe = compose_config([f"transform={option}"], tmp_path).transform
        assert (recipe.normalize, list(recipe.prepare), list(recipe.augment)) == expected, option


def test_normalize_none_feeds_the_network_pixels_over_255(archive: Path, tmp_path: Path) -> None:
    """On both ``data.normalize_on`` paths, in training and through a checkpoint's config in
    ``predict`` (``eval_loader``): mean 0, std 1 on the 0–1 scale, whatever the backbone."""
    inputs, photos = {}, {}
    for where in ("loader", "device"):
        overrides = [*TINY, f"data.root={archive}", "transform.normalize=none", "data.cache=none"]
        cfg = compose_config([*overrides, f"data.normalize_on={where}"], tmp_path / where)
        config = OmegaConf.to_container(cfg, resolve=True)
        datamodule = build_datamodule(config)
        config = fitted_config(config, datamodule)
        assert (config["data"]["mean"], config["data"]["std"]) == ([0.0] * 3, [1.0] * 3)
        module = FaceClassifier(config)  # as train builds it: its config goes in the checkpoint
        batch, *_ = next(iter(datamodule.val_dataloader()))
        assert batch.dtype == (torch.uint8 if where == "device" else torch.float32)
        paths = datamodule.val_table["path"].tolist()[:4]
        predicted, *_ = next(iter(eval_loader(module, paths, 4, 0)))
        assert predicted.dtype == batch.dtype
        inputs[where] = [module.as_input(batch), module.as_input(predicted)]
        photos[where] = batch
    pixels = photos["device"].float() / 255  # the uint8 photos the device path hands the model
    assert pixels.max() > 0.5  # photos, not a black frame
    for where in ("loader", "device"):
        val, predicted = inputs[where]
        assert val.dtype == torch.float32 and 0 <= val.min() and val.max() <= 1
        assert (val - pixels).abs().max() < 1e-6, where
        assert (predicted - pixels[:4]).abs().max() < 1e-6, where


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("scheduler", [p.stem for p in sorted((CONF / "scheduler").glob("*.yaml"))])
def test_every_optimizer_and_scheduler_gives_the_configured_rates(
    optimizer: str, scheduler: str, tmp_path: Path
) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    cfg = compose_config([f"optimizer={optimizer}", f"scheduler={scheduler}"], tmp_path)
    config = OmegaConf.to_container(cfg, resolve=True)
    built = build_optimizer(model, config["optimizer"])
    assert type(built).__name__ == cfg.optimizer._target_.rsplit(".", 1)[1]
    base = cfg.optimizer.lr
    assert built.defaults["lr"] == base
    schedule = build_scheduler(built, config["scheduler"], total_steps=10)
    options = config["scheduler"].get("scheduler")  # scheduler=none: {}, no schedule
    rates = []  # the rate of each of 10 optimizer steps, or after each of 10 epochs
    for _ in range(10):
        built.step()
        if schedule is None:
            rates.append(built.param_groups[0]["lr"])
        elif schedule["interval"] == "step":
            rates.append(built.param_groups[0]["lr"])
            schedule["scheduler"].step()
        else:  # an epoch: plateau sees a validation loss that never improves
            schedule["scheduler"].step(*([1.0] if scheduler == "plateau" else []))
            rates.append(built.param_groups[0]["lr"])
    if scheduler == "none":
        expected = [base] * 10
    elif scheduler == "cosine":  # 1 warm-up step of 10, then down to min_lr_ratio at the end
        assert rates[0] == pytest.approx(base) and rates == sorted(rates, reverse=True)
        built.step()
        rates.append(built.param_groups[0]["lr"])
        expected = [*rates[:-1], options["min_lr_ratio"] * base]
    elif scheduler == "onecycle":  # max_lr (the optimizer's lr) after 30 % of the steps
        peak = round(options["pct_start"] * 10) - 1
        assert rates.index(max(rates)) == peak
        expected = [*rates[:peak], base, *rates[peak + 1 : -1], base / 25 / 1e4]
        assert rates[0] == pytest.approx(base / 25)  # OneCycleLR's div_factor, final_div_factor
    elif scheduler == "step":  # × gamma every step_size epochs
        expected = [base * options["gamma"] ** (e // options["step_size"]) for e in range(1, 11)]
    else:  # plateau: × factor once the loss has not improved for more than `patience` epochs
        wait = options["patience"] + 1
        expected = [base * options["factor"] ** ((e - 1) // wait) for e in range(1, 11)]
    assert rates == pytest.approx(expected)


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
    # nothing of the experiment's own loss (label smoothing 0.1) is left over
    alone = OmegaConf.to_container(compose_config([f"loss={loss}"], tmp_path).loss, resolve=True)
    assert options == alone
    weights = {"class": [1.0] * 18} if options["class_weights"] else None
    criterion = HeadLoss({"class": 18}, instantiate(options["criterion"]), class_weights=weights)
    logits, labels = torch.randn(4, 18), torch.tensor([0, 5, 11, 17])
    value = criterion({"class": logits}, {"class": labels})
    assert value.ndim == 0 and torch.isfinite(value) and value > 0


def test_every_none_option_is_empty_and_builds_nothing(tmp_path: Path) -> None:
    """Nothing is written one way: an empty option, so the group's node is ``{}``."""
    nones = sorted(p.parent.relative_to(CONF).as_posix() for p in CONF.rglob("none.yaml"))
    assert nones == ["callbacks/ema", "mix", "scheduler"]
    assert all(OmegaConf.load(CONF / group / "none.yaml") == {} for group in nones)
    config = OmegaConf.to_container(
        compose_config([f"{group}=none" for group in nones], tmp_path), resolve=True
    )
    assert config["mix"] == config["scheduler"] == config["callbacks"]["ema"] == {}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert build_scheduler(optimizer, config["scheduler"], total_steps=10) is None
    without = build_callbacks(config["callbacks"])
    assert not any(isinstance(c, EMA) for c in without)
    on = OmegaConf.to_container(compose_config(["callbacks/ema=on"], tmp_path), resolve=True)
    added = [type(c) for c in build_callbacks(on["callbacks"])]
    assert added == [*map(type, without), EMA]  # `on` adds the one callback `none` leaves out


def compose_in(conf: Path, overrides: list[str]) -> dict[str, Any]:
    """``train.yaml`` of the config folder ``conf``, unresolved: ``{"data.root": …, …}``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return flat(OmegaConf.to_container(compose(config_name="train", overrides=overrides)))


def test_an_optional_local_config_sets_this_machines_paths(tmp_path: Path) -> None:
    conf = Path(shutil.copytree(CONF, tmp_path / "conf"))
    local = conf / "local" / "default.yaml"
    local.unlink(missing_ok=True)  # a copy of this checkout's own, if it has one
    cfg = compose_in(conf, [])  # none: the defaults, and no error
    assert (cfg["paths.data_dir"], cfg["data.root"]) == (
        "${paths.root_dir}/data",
        "${paths.data_dir}/archive",
    )

    shutil.copy(conf / "local" / "default.yaml.example", local)  # as the example tells a user
    example = OmegaConf.load(local)
    cfg = compose_in(conf, [])
    assert (cfg["paths.data_dir"], cfg["data.root"]) == (example.paths.data_dir, example.data.root)

    local.write_text("# @package _global_\ndata:\n  root: /elsewhere/archive\n")
    assert compose_in(conf, [])["data.root"] == "/elsewhere/archive"
    # an experiment's own root (demo: the synthetic archive) and the command line win over it
    assert compose_in(conf, ["experiment=demo"])["data.root"] == "${paths.data_dir}/synthetic"
    assert compose_in(conf, ["data.root=/given"])["data.root"] == "/given"
    compose_config([], tmp_path / "run")  # a run records the experiment's choices, not the machine
    assert "local" not in app_choices(HydraConfig.get().runtime.choices)
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"/conf/local/*", "!/conf/local/default.yaml.example"} <= set(ignored)
