"""One person, one answer: the eval photos grouped into people, each person's answers agreed.

The competition's eval set is whole people, seven photos each (five masked, one incorrectly
masked, one unmasked), under random names. A person's photos share a gender, an age group and
a shoot (background, clothes, light). Three steps, each switched on alone (``predict people.*``):

1. ``group``: photos into groups of at most seven (``grouping.py``: Ward's clustering with a
   cap on a group's size);
2. ``agree``: a group's gender and age are the sums of its members' log-probabilities, given
   to every member (mask states stay each photo's own);
3. ``structure``: a group of exactly seven gets five worn, one incorrect, one not worn, by the
   Hungarian assignment of its photos to those seven states.

What groups photos is ``embedding``: the backbone's pooled features (each ensemble member's),
the colours of the photo's border (the shoot; :func:`models.module.border_colours`), or both.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mask_age_gender.errors import UserMistake
from mask_age_gender.inference.grouping import group_photos
from mask_age_gender.labels import NUM_CLASSES, PHOTO_MASK, decode, encode
from mask_age_gender.models.module import SHOOT_DIMS

log = logging.getLogger(__name__)
SIZE = len(PHOTO_MASK)  # photos of one person in the eval set: seven
MASK_PLAN = np.array(sorted(PHOTO_MASK.values()))  # 5 worn, 1 incorrect, 1 not worn
FEATURES = ("shoot", "backbone", "both")


class PeopleRefused(UserMistake, ValueError):
    """``people.*`` options that do not go together."""


@dataclass(frozen=True)
class PeopleOptions:
    """``predict``'s ``people`` node."""

    group: bool = False
    agree: bool = False
    structure: bool = False
    features: str = "shoot"

    def __post_init__(self) -> None:
        if (self.agree or self.structure) and not self.group:
            raise PeopleRefused("people.agree and people.structure need people.group=true")
        if self.features not in FEATURES:
            raise PeopleRefused(f"people.features must be one of {FEATURES}, got {self.features!r}")


def split_outputs(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N × 18 probabilities, N × D embedding) of ``predict_proba(..., embed=True)``."""
    return outputs[:, :NUM_CLASSES], outputs[:, NUM_CLASSES:]


def embedding(embedded: list[np.ndarray], features: str = PeopleOptions.features) -> np.ndarray:
    """The space photos are grouped in, from each ensemble member's N × D embedding: the
    backbones' features (centred, unit length, members weighted alike) and/or the border
    colours (log, less the photo's mean log: the shot's lighting; standardised, unit length),
    the two blocks weighted alike."""
    embedded = [np.nan_to_num(e.astype(np.float64), posinf=0.0, neginf=0.0) for e in embedded]
    blocks = []  # a photo whose numbers are not finite: zeros there, the others unspoilt
    if features in ("both", "backbone"):
        members = [unit(e[:, :-SHOOT_DIMS] - e[:, :-SHOOT_DIMS].mean(axis=0)) for e in embedded]
        blocks.append(np.hstack(members) / math.sqrt(len(members)))
    if features in ("both", "shoot"):
        colours = np.log(np.clip(embedded[0][:, -SHOOT_DIMS:], 0, 1) + 1 / 255)
        colours -= colours.mean(axis=1, keepdims=True)  # each shot's light: one factor on all
        blocks.append(unit((colours - colours.mean(axis=0)) / (colours.std(axis=0) + 1e-6)))
    return np.hstack(blocks)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-12)


def group(embedded: list[np.ndarray], features: str = PeopleOptions.features) -> np.ndarray:
    """Each photo's group (0, 1, …) from the members' embeddings (``split_outputs``)."""
    return group_photos(embedding(embedded, features), SIZE)


def agree_people(
    probs: np.ndarray, labels: np.ndarray, embedded: list[np.ndarray], options: PeopleOptions
) -> tuple[np.ndarray, np.ndarray]:
    """(labels made to agree, each photo's group): the three steps as ``options`` say, and a
    log line of what they did."""
    started = time.perf_counter()
    groups = group(embedded, options.features)
    agreed = people_labels(probs, labels, groups, options.agree, options.structure)
    seconds = time.perf_counter() - started
    log.info("%s (%.1f s)", describe(groups, int((agreed != labels).sum()), options), seconds)
    return agreed, groups


def people_labels(
    probs: np.ndarray, labels: np.ndarray, groups: np.ndarray, agree: bool, structure: bool
) -> np.ndarray:
    """``labels`` (N, from ``probs``, N × 18) with each group's answers made to agree.

    ``agree``: in every group of two or more, gender and age become the group's (the argmax
    of the summed log-probabilities) and each photo keeps its mask state. ``structure``: a
    group of seven takes five worn, one incorrect and one not worn (Hungarian on the
    members' mask log-probabilities); a photo whose mask state moves takes, without
    ``agree``, its likeliest gender and age under that state.
    """
    if not len(labels):
        return labels
    joint = probs.reshape(-1, 3, 2, 3).astype(np.float64)  # mask, gender, age (labels.py)
    mask, gender, age = decode(labels)
    sizes = np.bincount(groups)
    if structure:
        mask = planned_masks(log_of(joint.sum(axis=(2, 3))), groups, sizes, mask)
        given = joint[np.arange(len(joint)), mask].reshape(-1, 6).argmax(axis=1)
        moved = mask != decode(labels)[0]
        _, given_gender, given_age = decode(given)  # given: gender × age, the mask's row
        gender = np.where(moved, given_gender, gender)
        age = np.where(moved, given_age, age)
    if agree:
        shared = sizes[groups] > 1
        gender = np.where(shared, group_choice(joint.sum(axis=(1, 3)), groups), gender)
        age = np.where(shared, group_choice(joint.sum(axis=(1, 2)), groups), age)
    return encode(mask, gender, age).astype(labels.dtype)


def group_choice(marginal: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per photo, its group's value of highest summed log-probability."""
    summed = np.zeros((groups.max() + 1, marginal.shape[1]))
    np.add.at(summed, groups, log_of(marginal))
    return summed.argmax(axis=1)[groups]


def planned_masks(
    log_mask: np.ndarray, groups: np.ndarray, sizes: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """``mask`` with every group of seven assigned ``MASK_PLAN``, likeliest assignment first."""
    mask = mask.copy()
    for number in np.flatnonzero(sizes == len(MASK_PLAN)):
        members = np.flatnonzero(groups == number)
        rows, seats = linear_sum_assignment(-log_mask[members][:, MASK_PLAN])
        mask[members[rows]] = MASK_PLAN[seats]
    return mask


def log_of(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-12, None))


def describe(groups: np.ndarray, changed: int, options: PeopleOptions) -> str:
    """One log line: how the photos were grouped and what agreeing changed."""
    sizes = np.bincount(groups) if len(groups) else np.zeros(0, dtype=np.int64)
    line = (
        f"people: {len(groups)} photos in {len(sizes)} groups: {int((sizes == SIZE).sum())} "
        f"of {SIZE} photos, {int(((sizes > 1) & (sizes < SIZE)).sum())} smaller, "
        f"{int((sizes == 1).sum())} of one photo (answered alone)"
    )
    steps = [name for name in ("agree", "structure") if getattr(options, name)]
    if steps:
        line += f"; {' + '.join(steps)} changed {changed} answers"
    return line
