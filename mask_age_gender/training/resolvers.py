"""OmegaConf resolvers used by the configs."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from mask_age_gender.training.resume import hydra_subdir, resume_dir


def mixed_precision() -> str:
    """Lightning's precision flag: bf16 mixed where the GPU supports it, fp16 mixed otherwise."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed"


OmegaConf.register_new_resolver("mixed_precision", mixed_precision, replace=True)
OmegaConf.register_new_resolver("resume_dir", resume_dir, replace=True)  # hydra.run.dir
OmegaConf.register_new_resolver("hydra_subdir", hydra_subdir, replace=True)  # hydra.output_subdir
