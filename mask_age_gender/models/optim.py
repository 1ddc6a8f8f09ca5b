"""Optimizer and learning-rate schedule from their config groups.

Step-based schedules receive the number of optimizer steps from the Trainer
(``estimated_stepping_batches``), which accounts for gradient accumulation, epochs and devices.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from hydra.utils import instantiate
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def build_optimizer(
    model: nn.Module, options: dict[str, Any], global_batch: int | None = None
) -> Optimizer:
    """The ``optimizer`` config over the model's parameters; ``exclude_norm_bias: true`` puts
    norm layers and biases (1-D parameters) in a group without weight decay; with
    ``reference_batch`` the rate is scaled to ``global_batch`` (``scaled_lr``). Built after the
    model is on its device, with that device's fastest update (``fused_or_foreach``)."""
    options = dict(options)
    reference = options.pop("reference_batch", None)
    if reference:
        if global_batch is None:
            raise ValueError("optimizer.reference_batch needs the global batch size to scale to")
        options["lr"] = scaled_lr(options["lr"], options["_target_"], global_batch, reference)
    params = model.parameters()
    if options.pop("exclude_norm_bias", False):
        params = param_groups_weight_decay(model, options.get("weight_decay", 0.0))
    factory = instantiate(options)
    device = next(model.parameters()).device
    return factory(params=params, **fused_or_foreach(factory, device, options))


def scaled_lr(lr: float, optimizer: str, global_batch: int, reference_batch: int) -> float:
    """``lr``, set for a batch of ``reference_batch``, scaled to ``global_batch`` as timm's
    train.py does (``--lr-base-size``): linearly for SGD (Goyal et al. 2017, "Accurate, Large
    Minibatch SGD"), by the square root for Adam-family optimizers (Krizhevsky 2014, "One weird
    trick…"; Hoffer et al. 2017), whose updates are normalised per parameter."""
    ratio = global_batch / reference_batch
    adaptive = any(name in optimizer.lower() for name in ("adam", "lamb", "ada"))
    return lr * (math.sqrt(ratio) if adaptive else ratio)


FUSED_DEVICES = ("cuda", "cpu")  # where torch's Adam, AdamW and SGD have fused kernels


def fused_or_foreach(factory: Any, device: torch.device, options: dict[str, Any]) -> dict:
    """``fused=True`` where the optimizer has a fused kernel for ``device`` (one kernel for all
    parameters; the step counts stay on the device, so no ``.item()`` per parameter and step),
    else ``foreach=True``; nothing when the config sets either, or the optimizer has neither."""
    if "fused" in options or "foreach" in options:
        return {}
    accepts = inspect.signature(getattr(factory, "func", factory)).parameters
    if "fused" in accepts and device.type in FUSED_DEVICES:
        return {"fused": True}
    return {"foreach": True} if "foreach" in accepts else {}


def build_scheduler(
    optimizer: Optimizer, options: dict[str, Any], total_steps: int
) -> dict[str, Any] | None:
    """Lightning's scheduler dict for the ``scheduler`` config, or None for a constant rate.
    A ``max_lr`` left null (``onecycle``) is the optimizer's rate as built, after
    ``reference_batch`` has scaled it."""
    if not options.get("scheduler"):
        return None
    factory = instantiate(options["scheduler"])
    accepts = inspect.signature(factory).parameters
    kwargs: dict[str, Any] = {"total_steps": total_steps} if "total_steps" in accepts else {}
    if "max_lr" in accepts and options["scheduler"].get("max_lr") is None:
        kwargs["max_lr"] = [group["lr"] for group in optimizer.param_groups]
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
