"""The scores of ``models/scores.py`` (what ``TaskMetrics``, ``score``, the error analysis and the
bootstrap use), from a confusion matrix, are sklearn's: macro F1 over the classes that occur (in
the targets or the predictions), accuracy, macro F1 of each task, per-class precision, recall
and F1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from mask_age_gender.labels import NUM_CLASSES, TASKS, decode
from mask_age_gender.models.metrics import TaskMetrics
from mask_age_gender.models.scores import confusion_matrix, confusion_scores, per_class, score


def test_three_photos_score_as_worked_by_hand() -> None:
    # class = mask * 6 + gender * 3 + age; all three photos male
    target = [0, 0, 7]  # (wear, young), (wear, young), (incorrect, middle)
    preds = [0, 1, 7]  # right, (wear, middle), right
    # 18 classes: 0 has tp 1, fn 1: F1 2/3; 1 has fp 1: F1 0; 7 has tp 1: F1 1; the 15 others
    # occur nowhere and are left out: (2/3 + 0 + 1) / 3 = 5/9
    # mask 0, 0, 1 predicted 0, 0, 1: 1. gender all male: 1 (female left out, else 1/2)
    # age 0, 0, 1 predicted 0, 1, 1: young tp 1, fn 1 and middle tp 1, fp 1, both F1 2/3; old
    # left out: 2/3 (else 4/9)
    scores = score(preds, target)
    expected = {"f1": 5 / 9, "acc": 2 / 3, "f1_mask": 1.0, "f1_gender": 1.0, "f1_age": 2 / 3}
    assert scores == pytest.approx(expected, abs=1e-6)
    assert scores["f1"] == pytest.approx(f1_score(target, preds, average="macro"), abs=1e-6)


def test_three_photos_per_class_as_worked_by_hand() -> None:
    counts = per_class(confusion_matrix([0, 1, 7], [0, 0, 7]))
    # class 0: 2 true, 1 predicted, 1 right; class 1: 0 true, 1 predicted; class 7: 1 and 1, right
    expected = {
        "support": {0: 2, 1: 0, 7: 1},
        "predicted": {0: 1, 1: 1, 7: 1},
        "precision": {0: 1.0, 1: 0.0, 7: 1.0},
        "recall": {0: 0.5, 1: 0.0, 7: 1.0},  # class 1 has no true photo: 0, not NaN
        "f1": {0: 2 / 3, 1: 0.0, 7: 1.0},
    }
    for name, values in expected.items():
        column = np.zeros(NUM_CLASSES)
        column[list(values)] = list(values.values())
        assert counts[name] == pytest.approx(column), name


@pytest.mark.parametrize("seed", range(4))
def test_per_class_scores_are_sklearns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = rng.choice(NUM_CLASSES, size=int(rng.integers(2, NUM_CLASSES)), replace=False)
    target = rng.choice(classes, 150)
    preds = np.where(rng.random(150) < 0.4, target, rng.integers(0, NUM_CLASSES, 150))
    counts = per_class(confusion_matrix(preds, target))
    precision, recall, f1, support = precision_recall_fscore_support(
        target, preds, labels=np.arange(NUM_CLASSES), zero_division=0
    )
    theirs = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    for name, values in theirs.items():
        assert counts[name] == pytest.approx(values, abs=1e-12), name
    assert counts["predicted"].tolist() == np.bincount(preds, minlength=NUM_CLASSES).tolist()


def test_a_stack_of_matrices_scores_each_like_sklearn_in_numpy_and_torch() -> None:
    rng = np.random.default_rng(7)
    sets = []
    for photos, classes in ((60, 18), (40, 4), (90, 11)):
        target = rng.integers(0, classes, photos)
        sets.append(
            (np.where(rng.random(photos) < 0.5, target, rng.integers(0, 18, photos)), target)
        )
    stack = np.stack([confusion_matrix(preds, target) for preds, target in sets])
    for matrices in (stack, torch.from_numpy(stack)):  # what the bootstrap and training pass
        scores = confusion_scores(matrices)
        for k, (preds, target) in enumerate(sets):
            got = {name: float(values[k]) for name, values in scores.items()}
            assert got == pytest.approx(sklearn_scores(preds, target), abs=1e-6)


def test_labels_outside_the_18_classes_are_refused() -> None:
    with pytest.raises(ValueError, match="0–17"):
        score([0, 18], [0, 1])
    with pytest.raises(ValueError, match="predictions for"):
        score([0, 1], [0])


def test_no_photos_score_zero() -> None:
    with pytest.warns(UserWarning, match="before the ``update``"):
        scores = {name: float(value) for name, value in TaskMetrics().compute().items()}
    assert scores == dict.fromkeys(("f1", "acc", *(f"f1_{task}" for task in TASKS)), 0.0)


def sklearn_scores(preds: np.ndarray, target: np.ndarray) -> dict[str, float]:
    scores = {"f1": f1_score(target, preds, average="macro"), "acc": accuracy_score(target, preds)}
    for task, p, t in zip(TASKS, decode(preds), decode(target), strict=True):
        scores[f"f1_{task}"] = f1_score(t, p, average="macro")
    return scores


@pytest.mark.parametrize("seed", range(6))
def test_batches_score_as_one_batch_and_as_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    photos = int(rng.integers(20, 200))
    # some classes in neither the targets nor the predictions, some in only one of them
    classes = rng.choice(NUM_CLASSES, size=int(rng.integers(2, NUM_CLASSES)), replace=False)
    target = rng.choice(classes, photos)
    preds = np.where(rng.random(photos) < 0.5, target, rng.integers(0, NUM_CLASSES, photos))
    whole = TaskMetrics()
    whole.update(torch.from_numpy(preds), torch.from_numpy(target))
    batched = TaskMetrics()
    for p, t in zip(np.array_split(preds, 7), np.array_split(target, 7), strict=True):
        batched.update(torch.from_numpy(p), torch.from_numpy(t))
    assert whole.confusion.matrix.sum() == photos
    assert torch.equal(batched.confusion.matrix, whole.confusion.matrix)
    got = {name: float(value) for name, value in batched.compute().items()}
    assert got == pytest.approx(sklearn_scores(preds, target), abs=1e-6)


def test_an_epoch_resumed_midway_scores_all_its_batches() -> None:
    preds, target = torch.tensor([0, 5, 17, 3]), torch.tensor([0, 4, 17, 9])
    before = TaskMetrics(persistent=True)
    before.update(preds[:3], target[:3])
    resumed = TaskMetrics(persistent=True)  # from the checkpoint
    resumed.load_state_dict(before.state_dict())
    resumed.update(preds[3:], target[3:])
    assert resumed.compute() == pytest.approx(score(preds, target), abs=1e-6)
    assert "confusion.matrix" not in TaskMetrics().state_dict()  # not kept unless persistent


def test_checkpoints_of_torchmetrics_scores_still_load() -> None:
    """Before the confusion matrix: torchmetrics' per-class counts of each score."""
    old = {
        f"{name}.{count}": torch.zeros(n, dtype=torch.long)
        for name, n in (("f1", 18), ("acc", 18), ("task_f1.mask", 3), ("task_f1.age", 3))
        for count in ("tp", "fp", "tn", "fn")
    } | {"loss.mean_value": torch.tensor(4.0), "loss.weight": torch.tensor(3.0)}
    metrics = TaskMetrics(persistent=True)
    metrics.load_state_dict(old)
    metrics.update(torch.tensor([1]), torch.tensor([1]), torch.tensor(1.0))
    scores = metrics.compute()
    assert float(scores["acc"]) == 1.0 and float(scores["loss"]) == (4.0 + 1.0) / 4
