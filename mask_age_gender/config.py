"""The apps' configs composed outside the apps (tests, the benchmark), as Hydra would see them."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"  # the apps' config folder


def compose_config(overrides: list[str], output_dir: Path, name: str = "train") -> DictConfig:
    """The real config ``name`` with ``overrides``, writing to ``output_dir``; Hydra's runtime
    values (``${hydra:runtime.cwd}`` in paths) are those of this process."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg
