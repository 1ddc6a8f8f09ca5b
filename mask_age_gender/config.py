"""The apps' configs composed outside the apps (tests, the benchmark), as Hydra would see them,
and the helpers that read configs and their Hydra choices the same way wherever they are read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, open_dict

from mask_age_gender.resolvers import register_resolvers

CONF = Path(__file__).resolve().parents[1] / "conf"  # the apps' config folder


def compose_config(overrides: list[str], output_dir: Path, name: str = "train") -> DictConfig:
    """The real config ``name`` with ``overrides``, writing to ``output_dir``; Hydra's runtime
    values (``${hydra:runtime.cwd}`` in paths) are those of this process."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as ``{"optimizer.lr": 0.001, …}``: nested keys joined by dots, lists kept as
    values, empty sections left out."""
    return pd.json_normalize(dict(config), sep=".").to_dict(orient="records")[0] if config else {}


def app_choices(choices: Mapping[str, Any]) -> dict[str, Any]:
    """The option chosen in each of the apps' config groups (model, head, loss, …), from Hydra's
    runtime choices, without Hydra's own groups (``hydra/launcher``, …) and ``local`` (this
    machine's paths, not the experiment; Hydra names it ``default`` even when it is absent)."""
    return {k: v for k, v in choices.items() if not str(k).startswith("hydra") and k != "local"}


def list_or_value(value: Any) -> Any:
    """A list, tuple or ``ListConfig`` as a plain list (so they compare equal); others as is."""
    return list(value) if isinstance(value, list | tuple | ListConfig) else value
