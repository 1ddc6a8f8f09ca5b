"""The experiment log as configs, sweeps over them, the Optuna search, and the training-time
options that only show in a real run (EMA, step schedules under gradient accumulation)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf
from sklearn.metrics import f1_score
from torch.optim.swa_utils import AveragedModel

from mask_age_gender.train import train
from mask_age_gender.training.ema import EMA

from .conftest import CONF, compose_config
from .test_configs import flat, own_settings
from .test_train import run_sweep

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
ONE_STEP = [
    "model=test_resnet",
    "trainer=debug",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
]


def test_the_log_has_all_eleven_experiments() -> None:
    numbered = [e for e in EXPERIMENTS if e.startswith("exp")]
    assert [e[:5] for e in numbered] == [f"exp{k:02d}" for k in range(1, 12)]
    assert {"demo", "strong"} <= set(EXPERIMENTS)


# The experiment log as it was run: every setting the log states, written out here so that an
# edit of a config cannot drift from it. All with Adam at a constant rate (no schedule), early
# stopping patience 5. Steps as albumentations 2 takes them; GaussNoise's variance 1000–1600 on
# 0–255 pixels is a std of sqrt(var)/255.
CONTRAST = {  # exp08: RandomBrightnessContrast(contrast 0.2–0.8, p 0.4)
    "contrast": {
        "_target_": "albumentations.RandomBrightnessContrast",
        "contrast_limit": [0.2, 0.8],
        "p": 0.4,
    }
}
CROP = {  # exp09: CenterCrop(350, 250)
    "center_crop": {
        "_target_": "albumentations.CenterCrop",
        "height": 350,
        "width": 250,
        "pad_if_needed": True,
    }
}
EXP3 = {  # exp03: HorizontalFlip p 0.2, RandomBrightnessContrast ±0.3/±0.3 p 0.2, GaussNoise p 0.3
    "flip": {"_target_": "albumentations.HorizontalFlip", "p": 0.2},
    "brightness_contrast": {
        "_target_": "albumentations.RandomBrightnessContrast",
        "brightness_limit": 0.3,
        "contrast_limit": 0.3,
        "p": 0.2,
    },
    "noise": {
        "_target_": "albumentations.GaussNoise",
        "std_range": [round(math.sqrt(var) / 255, 3) for var in (1000, 1600)],
        "p": 0.3,
    },
}
B7 = "tf_efficientnet_b7.ns_jft_in1k"
# model.name, head, loss, lr, transform.normalize, transform.prepare, transform.augment
LOG = {
    "exp01": ("resnet50", "single", "ce", 1e-4, "none", {}, {}),
    "exp02": ("efficientnet_b0", "single", "ce", 1e-4, "none", {}, {}),
    "exp03": ("efficientnet_b0", "single", "ce", 1e-4, "train_stats", {}, EXP3),
    "exp04": ("efficientnet_b0", "single", "ce", 1e-4, "train_stats", {}, {}),
    "exp05": (B7, "single", "ce", 1e-4, "train_stats", {}, {}),
    "exp06": ("resnet50", "single", "ce", 1e-4, "train_stats", {}, {}),
    "exp07": ("resnet50", "single", "f1", 1e-5, "train_stats", {}, {}),
    "exp08": ("resnet50", "single", "ce", 1e-5, "train_stats", {}, CONTRAST),
    "exp09": ("resnet50", "single", "ce", 1e-5, "train_stats", CROP, CONTRAST),
    "exp10": ("efficientnet_b0", "single", "ce", 5e-6, "train_stats", CROP, CONTRAST),
    "exp11": ("resnet50", "multi", "ce", 1e-4, "train_stats", CROP, CONTRAST),
}


def test_the_experiment_group_offers_experiments_only(tmp_path: Path) -> None:
    """What the logged runs share (conf/recipe/log.yaml) is no option of the group: a sweep
    over ``glob(exp*)`` starts the eleven, and ``experiment=`` cannot pick the shared part."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        (sweep,) = OverridesParser.create(loader).parse_overrides(["experiment=glob(exp*)"])
        swept = list(sweep.sweep_string_iterator())
        assert loader.list_groups("experiment") == []  # no folder of parts beside the options
    assert [e[:5] for e in swept] == [f"exp{k:02d}" for k in range(1, 12)]
    for shared in ("log/common", "recipe/log"):
        with pytest.raises(MissingConfigException, match=f"experiment/{shared}"):
            compose_config([f"experiment={shared}"], tmp_path)


def test_each_logged_experiment_names_the_shared_recipe_and_its_normalisation() -> None:
    """One way: every transform option keeps the backbone's mean/std (test_configs.TRANSFORMS),
    and each expNN says the log's normalisation itself, as ``transform.normalize``."""
    for experiment in (e for e in EXPERIMENTS if e.startswith("exp")):
        own = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml")
        assert own.defaults[0] == "/recipe/log", experiment
        assert own.get("transform") == {"normalize": LOG[experiment[:5]][4]}, experiment


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_an_experiments_own_settings_take_effect(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    composed = flat(OmegaConf.to_container(cfg))
    values, picks = own_settings(f"experiment/{experiment}")  # what its file says, and picks
    assert {key: composed.get(key, "<missing>") for key in values} == values
    chosen = HydraConfig.get().runtime.choices
    assert {name: chosen.get(name, "<missing>") for name in picks} == picks
    assert cfg.task_name == experiment
    if experiment.startswith("exp"):  # and the log's record, against edits of those files
        name, head, loss, lr, normalize, prepare, augment = LOG[experiment[:5]]
        choices = HydraConfig.get().runtime.choices
        assert (cfg.model.name, choices.head, choices.loss) == (name, head, loss)
        assert (choices.optimizer, choices.scheduler, cfg.optimizer.lr) == ("adam", "none", lr)
        transform = OmegaConf.to_container(cfg.transform, resolve=True)  # whole: no extra step
        assert transform == {"normalize": normalize, "prepare": prepare, "augment": augment}
        assert cfg.callbacks.early_stopping.patience == 5
        assert cfg.data.image_size == [224, 224] and cfg.data.age_bins == [30, 60]


@pytest.mark.slow
def test_ema_weights_are_the_ones_validated_and_saved(
    train_config: Callable[..., DictConfig],
) -> None:
    cfg = train_config("callbacks/ema=on", "callbacks.ema.decay=0.5")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    averaged, trained = best["state_dict"], best["current_model_state"]  # EMA's swap
    assert averaged.keys() == trained.keys()
    assert any(not torch.equal(averaged[k], trained[k]) for k in averaged)
    summary = json.loads((run / "summary.json").read_text())
    history = pd.read_csv(run / "metrics.csv").groupby("epoch")["val/f1"].max()
    preds = pd.read_csv(run / "val_predictions.csv")  # from best.ckpt
    from_ckpt = f1_score(preds["true"], preds["pred"], average="macro")
    assert history[summary["best_epoch"]] == pytest.approx(from_ckpt, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_step_schedules_end_with_the_last_optimizer_step(
    train_config: Callable[..., DictConfig], scheduler: str
) -> None:
    # counted without the accumulation, the schedule would stop a third of the way down
    cfg = train_config(f"scheduler={scheduler}", "+trainer.accumulate_grad_batches=3")
    train(cfg)
    checkpoint = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    steps = checkpoint["global_step"]
    assert steps == 2 * 4  # 10 batches an epoch → 4 optimizer steps, 2 epochs
    state = checkpoint["lr_schedulers"][0]
    assert state["last_epoch"] == steps
    if scheduler == "onecycle":
        assert state["total_steps"] == steps
    else:  # warm-up + cosine has reached its floor, 1 % of the base rate
        final_lr = checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
        assert final_lr == pytest.approx(0.01 * cfg.optimizer.lr)


@pytest.mark.slow
def test_a_glob_sweep_trains_every_experiment_a_step_in_a_folder_of_its_own(
    archive: Path, tmp_path: Path
) -> None:
    """``experiment=glob(*)``: each experiment, its data root and image size giving way to the
    tiny archive's, trains a step in a job of its own (the sweep goes on past a failed job)."""
    run_sweep(archive, tmp_path, "experiment=glob(*)", *ONE_STEP)
    done = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/summary.json")}
    assert sorted(summary["experiment"] for summary in done.values()) == EXPERIMENTS
    for folder, summary in done.items():  # the folder's own record of what it ran
        overrides = (tmp_path / folder / ".hydra" / "overrides.yaml").read_text()
        assert f"experiment={summary['experiment']}" in overrides, folder
        assert summary["status"] == "finished", (folder, summary.get("reason"))
        config = yaml.safe_load((tmp_path / folder / ".hydra" / "config.yaml").read_text())
        assert config["model"]["name"] == "test_resnet", folder


def averaged_model(model: torch.nn.Module, decay: float) -> AveragedModel:
    """``model``'s average as :class:`EMA` keeps it in a fit."""
    ema = EMA(decay=decay)
    averaged = AveragedModel(model, multi_avg_fn=ema.average, use_buffers=True)
    ema._average_model = averaged  # as EMA.setup makes it for a fit
    return averaged


def test_ema_of_one_weight_over_known_updates_is_the_hand_computed_average() -> None:
    """The documented rule, worked out by hand: the first update copies, the t-th average after
    it is beta·average + (1 - beta)·weight with beta = min(decay, (1 + t) / (10 + t))."""
    model = torch.nn.Linear(1, 1, bias=False)
    averaged = averaged_model(model, decay=0.999)
    weight = model.weight
    expected = [
        2.0,  # copied
        11.0,  # t=1: beta = 2/11; 2/11 · 2 + 9/11 · 13 = (4 + 117)/11
        5.0,  # t=2: beta = 3/12 = 1/4; 11/4 + 3/4 · 3 = (11 + 9)/4
        14.0,  # t=3: beta = 4/13; 4/13 · 5 + 9/13 · 18 = (20 + 162)/13
    ]
    for value, average in zip((2.0, 13.0, 3.0, 18.0), expected, strict=True):
        with torch.no_grad():
            weight.fill_(value)
        averaged.update_parameters(model)
        assert averaged.module.weight.item() == pytest.approx(average)
    # after 10⁶ updates (1 + t)/(10 + t) > 0.999, so the decay is 0.999:
    # 0.999 · 14 + 0.001 · 1014 = 13.986 + 1.014 = 15
    averaged.n_averaged.fill_(10**6)
    with torch.no_grad():
        weight.fill_(1014.0)
    averaged.update_parameters(model)
    assert averaged.module.weight.item() == pytest.approx(15.0)


def test_ema_decay_warms_up_so_short_runs_leave_the_initial_weights() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.BatchNorm1d(1))  # + int buffer
    averaged = averaged_model(model, decay=0.999)
    torch.nn.init.zeros_(model[0].weight)
    averaged.update_parameters(model)  # first update copies
    for step in range(20):
        torch.nn.init.ones_(model[0].weight)
        model[1].num_batches_tracked.fill_(step)
        averaged.update_parameters(model)
    kept = 1.0  # the share of the zeros left: the product of the decays of updates 1 … 20
    for t in range(1, 21):
        kept *= min(0.999, (1 + t) / (10 + t))  # the documented warm-up, written out here
    # the product telescopes: (2 · 3 ⋯ 21) / (11 · 12 ⋯ 30) = 21! · 10! / 30! ≈ 7.0e-7
    assert kept == pytest.approx(math.factorial(21) * math.factorial(10) / math.factorial(30))
    assert averaged.module[0].weight.detach() == pytest.approx(torch.full((1, 3), 1 - kept))
    assert 1 - kept > 0.99  # a fixed 0.999 would have moved 2 % of the way
    assert int(averaged.module[1].num_batches_tracked) == 19  # integers are copied, not averaged
    with pytest.raises(ValueError, match=r"callbacks\.ema\.decay=1\.5"):
        EMA(1.5)
