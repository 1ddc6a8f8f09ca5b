"""The OmegaConf resolvers the configs use (``${mixed_precision:…}``, ``${resume_dir:…}`` …),
registered by ``register_resolvers()``: the commands call it before Hydra composes a config."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from omegaconf import OmegaConf


def mixed_precision(accelerator: str = "gpu") -> str:
    """Lightning's precision flag for ``accelerator`` (``trainer.accelerator``).

    ``gpu`` (or ``cuda``): bf16 mixed where the GPU computes in bf16 natively (compute
    capability 8.0 on, ROCm), fp16 mixed otherwise: on older GPUs torch only emulates bf16,
    slowly. ``auto``: the same when CUDA is available, ``32-true`` without it (CPU, MPS);
    ``cpu`` and anything else: ``32-true``.
    """
    accelerator = str(accelerator or "gpu").lower()
    cuda = torch.cuda.is_available()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and cuda):
        if cuda and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed"
        return "16-mixed"
    return "32-true"


SUBDIR_BYTES = 100  # the overrides part of a sweep's run folder name; a name may hold 255
LONG_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")  # 0.000123456789…


def sweep_subdir(num: int, override_dirname: str, max_bytes: int = SUBDIR_BYTES) -> str:
    """A sweep job's folder name: ``<job number>_<overrides>``, the overrides with floats to 4
    significant digits, ``/`` as ``_``, cut to ``max_bytes`` (``...`` marks a cut).

    The job number keeps the names apart; the full overrides are in the run's
    ``.hydra/overrides.yaml``. ``hydra.sweep.subdir`` uses it: Hydra names a folder after every
    override otherwise, and an Optuna trial's full-precision floats pass a file name's 255 bytes.
    """
    readable = LONG_NUMBER.sub(_rounded, str(override_dirname or "")).replace("/", "_")
    encoded = readable.encode()
    if len(encoded) > max_bytes:
        readable = encoded[: max_bytes - 3].decode(errors="ignore") + "..."
    return f"{num}_{readable}" if readable else str(num)


def _rounded(match: re.Match[str]) -> str:
    written = match.group()  # rounded only where it has more than 4 significant digits
    short = f"{float(written):.4g}"
    return written if float(short) == float(written) else short


def resume_dir(resume: str | None, ckpt_path: str | None, default: str) -> str:
    """``hydra.run.dir``: the run being resumed (``resume=DIR``, or the run directory holding
    ``ckpt_path=DIR/checkpoints/X.ckpt``), else a new one."""
    if resume:
        return str(resume)
    if ckpt_path and Path(ckpt_path).parent.name == "checkpoints":
        return str(Path(ckpt_path).parent.parent)
    return default


def hydra_subdir(resume: str | None, ckpt_path: str | None) -> str:
    """``hydra.output_subdir``: a resumed run keeps the ``.hydra/`` of its first start (the
    record of the experiment) and writes the resuming command's beside it."""
    return ".hydra" if resume_dir(resume, ckpt_path, "") == "" else ".hydra-resumed"


RESOLVERS = {
    "mixed_precision": mixed_precision,  # trainer.precision
    "resume_dir": resume_dir,  # hydra.run.dir
    "hydra_subdir": hydra_subdir,  # hydra.output_subdir
    "sweep_subdir": sweep_subdir,  # hydra.sweep.subdir
}


def register_resolvers() -> None:
    """Make the resolvers known to OmegaConf (again: replacing is harmless)."""
    OmegaConf.register_new_resolver("mixed_precision", mixed_precision, replace=True)
    OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)  # hydra.run.dir
    OmegaConf.register_new_resolver(
        "hydra_subdir", hydra_subdir, replace=True
    )  # hydra.output_subdir
    OmegaConf.register_new_resolver(
        "sweep_subdir", sweep_subdir, replace=True
    )  # hydra.sweep.subdir
