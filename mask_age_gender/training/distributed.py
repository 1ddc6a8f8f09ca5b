"""DDP under Hydra: the processes of ranks > 0 join the job they belong to, and nothing else.

Lightning starts ranks > 0 by running the command line again with ``hydra.run.dir`` set to
Hydra's run directory and ``hydra.output_subdir=null``: right for one run. In a sweep (``-m``)
the command line is the whole sweep and ``hydra.run.dir`` is not the job's directory, so each
extra process would start a sweep of its own in new folders; and what Lightning leaves in the
environment (``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_PORT``…) with the process group still open
would make the sweep's next job wait for processes it never starts. (Under SLURM the processes
come from ``srun``, one per GPU, and none are started here.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
CONFIG_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")


@contextmanager
def ddp_job(run_dir: Path) -> Iterator[None]:
    """In a sweep's job: DDP processes started in the block run this job alone, in ``run_dir``;
    afterwards the launch environment is as before and the process group closed."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        yield
        return
    hydra_cfg = HydraConfig.get()
    argv, env = sys.argv, {key: os.environ.get(key) for key in LAUNCH_ENV}
    sys.argv = [argv[0], *config_flags(argv[1:]), *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = str(run_dir.resolve())
    try:
        yield
    finally:
        sys.argv = argv
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def config_flags(args: Sequence[str]) -> list[str]:
    """The arguments that say where the config is (``-cp``, ``-cn``, ``-cd`` and values)."""
    kept: list[str] = []
    for i, arg in enumerate(args):
        after_flag = i > 0 and args[i - 1] in CONFIG_FLAGS
        if arg in CONFIG_FLAGS or after_flag or arg.split("=", 1)[0] in CONFIG_FLAGS:
            kept.append(arg)
    return kept
