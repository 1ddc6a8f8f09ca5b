"""The winners' vertical CutMix: lower halves swapped between photos of the same class only."""

from __future__ import annotations

import pytest
import torch

from mask_age_gender.models.mixing import VerticalCutMix

LABELS = torch.tensor([4, 0, 4, 9, 0, 4, 2, 0, 9, 17])  # 2 and 17 alone in their class
ALONE = torch.tensor([6, 9])
HEIGHT, ROW = 8, 4  # split 0.5


def photos(n: int) -> torch.Tensor:
    """Photo i is all i: a pixel tells which photo it came from."""
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, HEIGHT, 6).clone()


def sources(mixed: torch.Tensor) -> torch.Tensor:
    """The photo each lower half came from, after checking the half is one photo's."""
    lower = mixed[:, :, ROW:]
    assert torch.equal(lower, lower[:, :1, :1, :1].expand_as(lower))
    return lower[:, 0, 0, 0].long()


@pytest.mark.parametrize("p", [0.5, 1.0])
def test_lower_halves_come_from_another_photo_of_the_same_class(p: float) -> None:
    torch.manual_seed(0)
    images = photos(len(LABELS))
    mixed_count = 0
    for _ in range(20):
        mixed, labels = VerticalCutMix(p=p)(images, LABELS)
        assert torch.equal(labels, LABELS)
        assert torch.equal(mixed[:, :, :ROW], images[:, :, :ROW])  # upper halves untouched
        source = sources(mixed)
        assert torch.equal(LABELS[source], LABELS)
        assert torch.equal(mixed[ALONE], images[ALONE])  # alone in its class: as it was
        mixed_count += int((source != torch.arange(len(LABELS))).sum())
    partnered = 20 * (len(LABELS) - len(ALONE))
    if p == 1.0:  # every photo with another of its class, every time
        assert mixed_count == partnered
    else:  # about half of them (80 expected; seeded)
        assert 0.3 * partnered < mixed_count < 0.7 * partnered


def test_p_zero_leaves_every_photo() -> None:
    images = photos(len(LABELS))
    mixed, _ = VerticalCutMix(p=0.0)(images, LABELS)
    assert torch.equal(mixed, images)


def test_partners_are_drawn_at_random_within_the_class() -> None:
    torch.manual_seed(0)
    images = photos(len(LABELS))
    drawn = {int(sources(VerticalCutMix(p=1.0)(images, LABELS)[0])[0]) for _ in range(50)}
    assert drawn == {2, 5}  # photo 0 (class 4) takes photo 2's or photo 5's lower half


def test_the_mix_is_deterministic_under_a_seed() -> None:
    images = torch.randn(16, 3, HEIGHT, 6)
    labels = torch.randint(0, 4, (16,))
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(VerticalCutMix(p=0.5)(images, labels)[0])
    assert torch.equal(*runs)
