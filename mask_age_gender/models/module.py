"""The LightningModule: backbone → head → loss, with the task's metrics logged per stage.

It is built from the run's resolved config (a plain dict), which the checkpoint keeps, so
``predict`` can rebuild the same network, head and transform from the checkpoint alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from timm.models import get_pretrained_cfg

from mask_age_gender.models.losses import HeadLoss
from mask_age_gender.models.metrics import TaskMetrics
from mask_age_gender.models.nonfinite import FirstNonFinite
from mask_age_gender.models.optim import build_optimizer, build_scheduler

RUNTIME_OPTIONS = ("compile", "channels_last")  # model.* keys that are not backbone arguments
SHOOT_GRID = 4  # border_colours: the outer cells of a 4 × 4 grid of each photo
SHOOT_DIMS = (SHOOT_GRID**2 - (SHOOT_GRID - 2) ** 2) * 3  # 12 cells × 3 channels: 36 values
# model.compile: torch.compile's mode (true is "default"); false runs eager. The last two replay
# CUDA graphs, which hold one input shape: evaluation pads a short last batch to full size.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


class FaceClassifier(pl.LightningModule):
    """Classifies a face photo into the 18 mask × gender × age classes."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters()
        model = {k: v for k, v in config["model"].items() if k not in RUNTIME_OPTIONS}
        self.backbone = instantiate(model)
        self.channels_last = False  # decided in setup(), once the device is known
        self.eval_batch = 0  # > 0: evaluation pads shorter batches to it (CUDA graphs)
        self._pixel_scales: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self.head = instantiate(config["head"])(in_features=self.backbone.num_features)
        loss = config["loss"]
        class_weights = loss.get("class_weights")
        if class_weights is not None and not isinstance(class_weights, dict):
            raise ValueError(f"loss.class_weights={class_weights!r} was not computed from the data")
        self.criterion = HeadLoss(
            self.head.tasks, instantiate(loss["criterion"]), loss.get("head_weights"), class_weights
        )
        self.mix = instantiate(config["mix"]) if config.get("mix") else None
        # Each head's own loss too (train/loss_mask, …), when there is more than one head.
        heads = list(self.head.tasks) if len(self.head.tasks) > 1 else []
        self.train_metrics = TaskMetrics(persistent=True, loss_tasks=heads)  # epochs may resume
        self.val_metrics = TaskMetrics(loss_tasks=heads)
        self.nonfinite = {stage: FirstNonFinite(stage) for stage in ("train", "val")}

    def _pixel_scale(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``data.mean``/``std`` on the 0–255 scale, in float32 on ``device``, for uint8 batches
        (``normalize_on: device``). Not buffers: ``.to(bf16)`` would round them, and the
        checkpoint's config already holds them."""
        if device not in self._pixel_scales:
            data = self.hparams.config["data"]
            if data.get("mean") is None or data.get("std") is None:
                raise ValueError("uint8 photos need data.mean and data.std in the config")
            self._pixel_scales[device] = tuple(
                torch.tensor(data[name], dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255
                for name in ("mean", "std")
            )
        return self._pixel_scales[device]

    def setup(self, stage: str) -> None:
        self.apply_runtime_options(on_gpu=self.trainer.strategy.root_device.type == "cuda")

    def apply_runtime_options(self, on_gpu: bool) -> None:
        """``model.channels_last`` (``auto``: on a GPU) and ``model.compile`` take effect."""
        options = self.hparams.config["model"]
        wanted = options["channels_last"]  # train.yaml sets both
        self.channels_last = on_gpu if wanted == "auto" else bool(wanted)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        mode = compile_mode(options["compile"])
        if mode is not None:
            self.backbone.compile(mode=mode)  # in place: state_dict keys keep their names
        self.eval_batch = (
            self.hparams.config["data"]["batch_size"] if mode in CUDA_GRAPH_MODES else 0
        )

    def as_input(self, images: torch.Tensor) -> torch.Tensor:
        """The network's input: uint8 photos (``data.normalize_on=device``) normalised here,
        on the model's device, in float32 and then cast to the backbone's dtype (bf16 under
        ``precision=bf16-true``); float ones, normalised by the loader, as they are."""
        if self.channels_last:  # on the uint8 batch: a quarter of the bytes to move
            images = images.contiguous(memory_format=torch.channels_last)
        if images.dtype == torch.uint8:
            mean, std = self._pixel_scale(images.device)
            dtype = next(self.backbone.parameters()).dtype
            images = ((images.float() - mean) / std).to(dtype)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features, a row per photo."""
        photos = len(images)
        if not self.training and photos < self.eval_batch:  # one shape for the CUDA graph
            padding = images.new_zeros((self.eval_batch - photos, *images.shape[1:]))
            images = torch.cat([images, padding])  # eval-mode layers see each photo alone
        return self.backbone(self.as_input(images))[:photos]

    def unit_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """The photos on the 0–1 scale, from uint8 or from the loader's normalised floats."""
        if images.dtype == torch.uint8:
            return images.float() / 255
        mean, std = self._pixel_scale(images.device)
        return (images.float() * std + mean) / 255

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits by head task."""
        return self.head(self.features(images))

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities over the 18 classes, whatever the head."""
        return self.head.probabilities(self(images))

    predict_tta = "none"  # "hflip": predict_step averages each photo with its mirror image
    predict_embed = False  # True: predict_step adds each photo's embedding (inference/people.py)

    def predict_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """A batch's 18 class probabilities, in float32 on the CPU (``Trainer.predict``); with
        ``predict_tta="hflip"`` the mean of each photo's and its mirror image's. With
        ``predict_embed``, each row goes on with the photo's pooled features and its
        ``border_colours``."""
        images = batch[0]
        features = self.features(images)
        probs = self.head.probabilities(self.head(features)).float()
        embedding = None  # copied (cat) before the flipped pass: a CUDA graph reuses its output
        if self.predict_embed:
            colours = border_colours(self.unit_pixels(images))
            embedding = torch.cat([features.float(), colours], dim=1)
        if self.predict_tta == "hflip":
            probs = (probs + self.predict_proba(images.flip(dims=[3])).float()) / 2
        return (probs if embedding is None else torch.cat([probs, embedding], dim=1)).cpu()

    def _step(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        images, labels, indices = batch
        targets = labels
        if stage == "train" and self.mix is not None:
            images, targets = self.mix(self.as_input(images), labels)  # mixes normalised pixels
        logits = self(images)
        task_losses = self.criterion.task_losses(logits, self.head.targets(targets))
        loss = self.criterion.combine(task_losses)
        self.nonfinite[stage].record(
            loss, task_losses, indices, self.current_epoch, self.global_step
        )
        metrics = self.train_metrics if stage == "train" else self.val_metrics
        metrics.update(self.head.probabilities(logits).argmax(dim=1), labels, loss, task_losses)
        return loss

    def _check_finite(self, stage: str) -> None:
        """Raise ``NonFiniteLoss`` for the first non-finite loss of ``stage`` (one host sync)."""
        loader = self.trainer.train_dataloader if stage == "train" else self.trainer.val_dataloaders
        paths = getattr(getattr(loader, "dataset", None), "paths", None)
        self.nonfinite[stage].check(
            lambda found: [str(paths[i]) if paths else f"#{i}" for i in found]
        )

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:  # not every step: a sync
            self._check_finite("train")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_finite("train")  # never a checkpoint of weights a NaN has reached

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_train_epoch_end(self) -> None:
        self._check_finite("train")
        self._log_scores(self.train_metrics, "train")

    def on_validation_epoch_end(self) -> None:
        self._check_finite("train")  # first: validation at an epoch's end runs before its end
        self._check_finite("val")
        self._log_scores(self.val_metrics, "val")

    def _log_scores(self, metrics: TaskMetrics, stage: str) -> None:
        """Epoch scores under ``{stage}/``: f1 and loss on the progress bar, the rest (acc,
        per-task F1, the multi head's unweighted per-head ``loss_<task>``) to the loggers."""
        scores = {f"{stage}/{name}": value for name, value in metrics.compute().items()}
        self.log(f"{stage}/f1", scores.pop(f"{stage}/f1"), prog_bar=True)
        self.log(f"{stage}/loss", scores.pop(f"{stage}/loss"), prog_bar=True)
        self.log_dict(scores)
        metrics.reset()

    def configure_optimizers(self) -> Any:
        config = self.hparams.config
        trainer = self.trainer
        # the photos one optimizer step sees: every process's micro-batches
        batch = config["data"]["batch_size"] * trainer.accumulate_grad_batches * trainer.world_size
        optimizer = build_optimizer(self, config["optimizer"], global_batch=batch)
        total_steps = int(self.trainer.estimated_stepping_batches)
        schedule = build_scheduler(optimizer, config.get("scheduler") or {}, total_steps)
        return optimizer if schedule is None else {"optimizer": optimizer, "lr_scheduler": schedule}


def border_colours(pixels: torch.Tensor) -> torch.Tensor:
    """Each photo's mean colours (0–1) in the outer cells of a 4 × 4 grid (``SHOOT_DIMS``
    values): the background and clothes of its shoot, which a person's seven photos share,
    without the face in the middle, which the mask changes."""
    cells = torch.nn.functional.adaptive_avg_pool2d(pixels, SHOOT_GRID)
    border = torch.ones(SHOOT_GRID, SHOOT_GRID, dtype=torch.bool, device=pixels.device)
    border[1:-1, 1:-1] = False
    return cells[:, :, border].flatten(1)


def compile_mode(setting: bool | str) -> str | None:
    """``model.compile`` as ``torch.compile``'s mode; None to run eagerly."""
    if setting is False or setting in ("false", "none", None):
        return None
    mode = "default" if setting is True or setting == "true" else setting
    if mode not in COMPILE_MODES:
        raise ValueError(
            f"model.compile must be false, true or one of {COMPILE_MODES}, got {setting!r}"
        )
    return mode


def backbone_normalization(model: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Mean and std the backbone was trained with (timm's pretrained config of the model)."""
    pretrained = get_pretrained_cfg(model["name"])
    if pretrained is None:
        raise ValueError(f"timm has no pretrained config for model.name={model['name']!r}")
    return list(pretrained.mean), list(pretrained.std)
