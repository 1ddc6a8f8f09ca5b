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

from mask_age_gender.losses import HeadLoss
from mask_age_gender.metrics import TaskMetrics


class FaceClassifier(pl.LightningModule):
    """Classifies a face photo into the 18 mask × gender × age classes."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = instantiate(config["model"])
        self.head = instantiate(config["head"])(in_features=self.backbone.num_features)
        loss = config["loss"]
        self.criterion = HeadLoss(
            self.head.tasks, instantiate(loss["criterion"]), loss.get("head_weights")
        )
        self.train_metrics = TaskMetrics()
        self.val_metrics = TaskMetrics()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits by head task."""
        return self.head(self.backbone(images))

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities over the 18 classes, whatever the head."""
        return self.head.probabilities(self(images))

    def _step(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, self.head.targets(labels))
        metrics = self.train_metrics if stage == "train" else self.val_metrics
        metrics.update(self.head.probabilities(logits).argmax(dim=1), labels)
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(labels),
            sync_dist=stage == "val",
        )
        return loss

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_train_epoch_end(self) -> None:
        self._log_scores(self.train_metrics, "train")

    def on_validation_epoch_end(self) -> None:
        self._log_scores(self.val_metrics, "val")

    def _log_scores(self, metrics: TaskMetrics, stage: str) -> None:
        scores = {f"{stage}/{name}": value for name, value in metrics.compute().items()}
        self.log(f"{stage}/f1", scores.pop(f"{stage}/f1"), prog_bar=True)
        self.log_dict(scores)
        metrics.reset()

    def configure_optimizers(self) -> Any:
        config = self.hparams.config
        optimizer = instantiate(config["optimizer"])(params=self.parameters())
        schedule = config.get("scheduler") or {}
        if not schedule.get("scheduler"):
            return optimizer
        scheduler = instantiate(schedule["scheduler"])(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": schedule.get("interval", "epoch"),
                "monitor": schedule.get("monitor", "val/loss"),
            },
        }


def normalization(config: dict[str, Any], backbone: torch.nn.Module) -> tuple[list, list]:
    """Mean and std for the inputs: ``data.mean``/``data.std`` if set, else the backbone's."""
    data = config["data"]
    if data.get("mean") is not None and data.get("std") is not None:
        return list(data["mean"]), list(data["std"])
    pretrained = backbone.pretrained_cfg
    return list(pretrained["mean"]), list(pretrained["std"])
