"""The OmegaConf resolvers the configs use (``${mixed_precision:…}``, ``${resume_dir:…}`` …),
registered by ``register_resolvers()``: the commands call it before Hydra composes a config."""

from __future__ import annotations

import hashlib
import os
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


CACHE_ENV = "MASK_AGE_GENDER_CACHE"  # where a user (or a cluster's job script) moves the caches


def cache_home() -> str:
    """``paths.cache_dir``: the user's cache folder for this project, outside every archive (which
    may sit on read-only shared storage): ``$MASK_AGE_GENDER_CACHE``, else
    ``$XDG_CACHE_HOME/mask_age_gender``, else ``~/.cache/mask_age_gender``."""
    if os.environ.get(CACHE_ENV):
        return str(Path(os.environ[CACHE_ENV]).expanduser())
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return str(Path(base).expanduser() / "mask_age_gender")


def archive_cache(home: str, root: str | None) -> str | None:
    """``data.cache_dir``: one archive's folder in the cache ``home``, named after the archive and
    a hash of its absolute path (``archives/<name>-<hash>``): two archives never share a boxes
    file, and the archive itself is never written. None without an archive (``predict``)."""
    if root is None:
        return None
    resolved = Path(root).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return str(Path(home) / "archives" / f"{resolved.name}-{digest}")


RESOLVERS = {
    "mixed_precision": mixed_precision,  # trainer.precision
    "resume_dir": resume_dir,  # hydra.run.dir
    "hydra_subdir": hydra_subdir,  # hydra.output_subdir
    "sweep_subdir": sweep_subdir,  # hydra.sweep.subdir
    "cache_home": cache_home,  # paths.cache_dir
    "archive_cache": archive_cache,  # data.cache_dir
}


def register_resolvers() -> None:
    """Make the resolvers known to OmegaConf (again: replacing is harmless)."""
    for name, resolver in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)
