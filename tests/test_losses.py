"""Losses and label mixing: the formulas, soft targets, and the heads' use of them."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from timm.data import Mixup

from mask_age_gender.models.heads import MultiHead, SingleHead
from mask_age_gender.models.losses import FocalLoss, HeadLoss, SoftF1Loss
from mask_age_gender.models.mixing import VerticalCutMix


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(16, 18), torch.randint(0, 18, (16,))


def test_focal_with_gamma_zero_is_cross_entropy(batch) -> None:
    logits, target = batch
    assert FocalLoss(18, gamma=0.0)(logits, target) == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-5
    )
    smoothed = FocalLoss(18, gamma=0.0, label_smoothing=0.1)(logits, target)
    assert smoothed == pytest.approx(F.cross_entropy(logits, target, label_smoothing=0.1).item())


def test_focal_down_weights_easy_examples(batch) -> None:
    logits, target = batch
    confident = logits.clone()
    confident[torch.arange(16), target] += 10  # every photo now easy
    ratio = FocalLoss(18, gamma=2.0)(confident, target) / F.cross_entropy(confident, target)
    assert ratio < 1e-3
    assert FocalLoss(18, gamma=2.0)(logits, target) < F.cross_entropy(logits, target)


def test_focal_alpha_weights_classes(batch) -> None:
    logits, target = batch
    alpha = torch.ones(18)
    alpha[target[0]] = 5.0
    assert FocalLoss(18, weight=alpha)(logits, target) > FocalLoss(18)(logits, target)


def test_soft_f1_is_zero_when_perfect_and_near_one_when_wrong() -> None:
    target = torch.arange(18).repeat(2)
    perfect = F.one_hot(target, 18).float() * 50
    wrong = F.one_hot((target + 1) % 18, 18).float() * 50
    assert SoftF1Loss(18)(perfect, target) < 1e-4
    assert SoftF1Loss(18)(wrong, target) > 0.999


def test_losses_accept_soft_targets_equal_to_one_hot(batch) -> None:
    logits, target = batch
    soft = F.one_hot(target, 18).float()
    for loss in (FocalLoss(18), SoftF1Loss(18), torch.nn.CrossEntropyLoss()):
        assert loss(logits, soft) == pytest.approx(loss(logits, target).item(), rel=1e-5)


def test_multi_head_loss_is_the_weighted_sum_of_task_losses(batch) -> None:
    features, target = torch.randn(16, 8), batch[1]
    head = MultiHead(8)
    logits = head(features)
    targets = head.targets(target)
    weighted = HeadLoss(head.tasks, torch.nn.CrossEntropyLoss, head_weights=[1.0, 0.5, 2.0])
    parts = [F.cross_entropy(logits[t], targets[t]) for t in ("mask", "gender", "age")]
    expected = parts[0] + 0.5 * parts[1] + 2.0 * parts[2]
    assert weighted(logits, targets).item() == pytest.approx(expected.item(), rel=1e-5)


def test_each_task_of_the_multi_head_gets_its_own_class_count() -> None:
    loss = HeadLoss(MultiHead(4).tasks, functools.partial(SoftF1Loss))
    assert {t: c.num_classes for t, c in loss.criteria.items()} == {
        "mask": 3,
        "gender": 2,
        "age": 3,
    }
    assert HeadLoss(SingleHead(4).tasks, SoftF1Loss).criteria["class"].num_classes == 18


def test_class_weights_reach_the_criterion() -> None:
    weights = {"class": [float(k) for k in range(18)]}
    loss = HeadLoss(SingleHead(4).tasks, torch.nn.CrossEntropyLoss, class_weights=weights)
    assert loss.criteria["class"].weight.tolist() == weights["class"]
    with pytest.raises(ValueError, match="takes no class weights"):
        HeadLoss(SingleHead(4).tasks, SoftF1Loss, class_weights=weights)


def test_mixed_targets_become_task_marginals_for_the_multi_head() -> None:
    torch.manual_seed(0)
    images, labels = torch.randn(8, 3, 16, 12), torch.randint(0, 18, (8,))
    mixed, soft = Mixup(mixup_alpha=0.4, cutmix_alpha=0.0, label_smoothing=0.0, num_classes=18)(
        images, labels
    )
    assert soft.shape == (8, 18) and torch.allclose(soft.sum(dim=1), torch.ones(8))
    targets = MultiHead(4).targets(soft)
    for task, n in {"mask": 3, "gender": 2, "age": 3}.items():
        assert targets[task].shape == (8, n)
        assert torch.allclose(targets[task].sum(dim=1), torch.ones(8))
    hard = MultiHead(4).targets(labels)
    one_hot = MultiHead(4).targets(F.one_hot(labels, 18).float())
    assert (one_hot["age"].argmax(dim=1) == hard["age"]).all()


def test_vertical_cutmix_joins_photos_of_the_same_class_only() -> None:
    torch.manual_seed(1)
    labels = torch.tensor([0, 0, 0, 5, 5, 7])
    images = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 3, 8, 4).clone()
    mixed, out_labels = VerticalCutMix(p=1.0)(images, labels)
    assert torch.equal(out_labels, labels)
    assert torch.equal(mixed[:, :, :4], images[:, :, :4])  # top halves untouched
    sources = mixed[:, 0, -1, 0].long()  # which photo each bottom half came from
    assert (labels[sources] == labels).all()
    assert sources[5] == 5  # alone in its class
    assert (sources[:5] != torch.arange(5)).any()
