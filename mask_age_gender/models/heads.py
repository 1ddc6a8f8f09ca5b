"""Classification heads over pooled backbone features.

Both return a dict of logits by task and turn them into probabilities over the 18 classes
(and into 18 class scores, what a class-activation map ranks), so metrics, predictions,
ensembles and the maps never need to know which head was used.
"""

from __future__ import annotations

import torch
from torch import nn

from mask_age_gender.labels import NUM_CLASSES, TASK_CLASSES, decode


class SingleHead(nn.Module):
    """One 18-way classifier."""

    def __init__(self, in_features: int, dropout: float = 0.0):
        super().__init__()
        self.tasks = {"class": NUM_CLASSES}
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, NUM_CLASSES))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"class": self.classifier(features)}

    def targets(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class indices (B,) or, with label mixing, probabilities (B, 18)."""
        return {"class": labels}

    def probabilities(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        return logits["class"].float().softmax(dim=-1)

    def class_scores(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 18) unnormalised class scores: the logits (what a class-activation map ranks)."""
        return logits["class"]


class MultiHead(nn.Module):
    """Three classifiers (mask 3, gender 2, age 3); the 18-class probability is their product."""

    def __init__(self, in_features: int, dropout: float = 0.0):
        super().__init__()
        self.tasks = dict(TASK_CLASSES)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict(
            {task: nn.Linear(in_features, n) for task, n in self.tasks.items()}
        )

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.dropout(features)
        return {task: layer(features) for task, layer in self.classifiers.items()}

    def targets(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-task targets: decoded class indices, or marginals of mixed (B, 18) targets."""
        if labels.dim() == 1:
            return dict(zip(self.tasks, decode(labels), strict=True))
        joint = labels.reshape(-1, 3, 2, 3)  # mask × gender × age, the order of the class code
        return {
            "mask": joint.sum(dim=(2, 3)),
            "gender": joint.sum(dim=(1, 3)),
            "age": joint.sum(dim=(1, 2)),
        }

    def probabilities(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        mask, gender, age = (logits[t].float().softmax(dim=-1) for t in self.tasks)
        # class = mask*6 + gender*3 + age is the row-major order of a (3, 2, 3) array
        return torch.einsum("bm,bg,ba->bmga", mask, gender, age).flatten(1)

    def class_scores(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 18) unnormalised class scores: a class's mask, gender and age logits summed, the
        log of its probability up to each head's normaliser."""
        mask, gender, age = (logits[t] for t in self.tasks)
        joint = mask[:, :, None, None] + gender[:, None, :, None] + age[:, None, None, :]
        return joint.flatten(1)
