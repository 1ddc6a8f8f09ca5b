"""Optimizer and learning-rate schedule from their config groups.

Step-based schedules receive the number of optimizer steps from the Trainer
(``estimated_stepping_batches``), which accounts for gradient accumulation, epochs and devices.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from hydra.utils import instantiate
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def build_optimizer(model: nn.Module, options: dict[str, Any]) -> Optimizer:
    """The ``optimizer`` config over the model's parameters; ``exclude_norm_bias: true`` puts
    norm layers and biases (1-D parameters) in a group without weight decay."""
    options = dict(options)
    params = model.parameters()
    if options.pop("exclude_norm_bias", False):
        params = param_groups_weight_decay(model, options.get("weight_decay", 0.0))
    return instantiate(options)(params=params)


def build_scheduler(
    optimizer: Optimizer, options: dict[str, Any], total_steps: int
) -> dict[str, Any] | None:
    """Lightning's scheduler dict for the ``scheduler`` config, or None for a constant rate."""
    if not options.get("scheduler"):
        return None
    factory = instantiate(options["scheduler"])
    takes_steps = "total_steps" in inspect.signature(factory).parameters
    kwargs = {"total_steps": total_steps} if takes_steps else {}
    return {
        "scheduler": factory(optimizer=optimizer, **kwargs),
        "interval": options.get("interval", "epoch"),
        "monitor": options.get("monitor", "val/loss"),
    }


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.05,
    min_lr_ratio: float = 0.01,
) -> LambdaLR:
    """Linear warm-up from 0 over the first ``warmup_fraction`` of the steps, then cosine decay
    to ``min_lr_ratio`` × the base learning rate. Step it every optimizer step."""
    warmup = max(1, round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
