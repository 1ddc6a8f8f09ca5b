"""The optional extras (``pip install 'mask_age_gender[NAME]'``): which options need which, and
the one line that stops a command choosing an option whose extra is not installed.

The options are chosen on the command line (``logger=wandb``, ``hparams_search=optuna``,
``hydra/launcher=slurm_gpu``) before Hydra composes a config, which for a missing Hydra plugin
would fail with a lookup error that names neither the plugin nor the extra; the loggers are
checked again in the composed config, where an experiment or ``conf/local`` may choose them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mask_age_gender.errors import UserMistake

EXTRAS = {  # extra: the modules it provides
    "wandb": ("wandb",),
    "tensorboard": ("tensorboard",),
    "optuna": ("optuna", "hydra_plugins.hydra_optuna_sweeper"),
    "slurm": ("submitit", "hydra_plugins.hydra_submitit_launcher"),
}
OPTIONS = (  # a command-line override that chooses an option: the extra it needs
    (re.compile(r"\+*logger=.*\bwandb\b"), "wandb"),
    (re.compile(r"\+*logger=.*\btensorboard\b"), "tensorboard"),
    (re.compile(r"\+*(hparams_search|hydra/sweeper)=optuna\b"), "optuna"),
    (re.compile(r"\+*hydra/launcher=(slurm_gpu|submitit_\w+)\b"), "slurm"),
)
LOGGERS = {"WandbLogger": "wandb", "TensorBoardLogger": "tensorboard"}  # by _target_'s class


class ExtraMissing(UserMistake, ImportError):
    """An option chosen whose optional extra is not installed."""


def installed(extra: str) -> bool:
    """Whether every module of ``extra`` imports."""
    try:
        for module in EXTRAS[extra]:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def require(extra: str, option: str) -> None:
    """Refuse ``option`` in one line, naming the install command, unless ``extra`` imports."""
    if not installed(extra):
        raise ExtraMissing(
            f"{option} needs the {extra} extra: pip install 'mask_age_gender[{extra}]'"
        )


def check_command_line(args: Iterable[str]) -> None:
    """Each override of ``args`` that chooses an option of an extra: that extra installed."""
    for arg in args:
        for pattern, extra in OPTIONS:
            if pattern.match(arg):
                require(extra, arg)


def check_loggers(loggers: Mapping[str, Any] | None) -> None:
    """The configured loggers' extras installed (``logger`` as composed)."""
    for name, logger in (loggers or {}).items():
        target = str((logger or {}).get("_target_", ""))
        extra = LOGGERS.get(target.rsplit(".", 1)[-1])
        if extra is not None:
            require(extra, f"logger {name} ({target})")
