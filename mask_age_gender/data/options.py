"""FaceDataModule's settings by concern: the sections of ``conf/data/default.yaml``.

The config node stays flat (any key is ``data.KEY=VALUE``); :func:`grouped` sorts its keys into
these three, and refuses a key none of them takes. The defaults live in the YAML alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from mask_age_gender.labels import check_age_bins


@dataclass(frozen=True)
class ArchiveOptions:
    """Which photos, labelled how, and which people validate."""

    root: str
    verify_images: bool | str  # true: header check of every photo; full: decode all; false
    age_bins: Sequence[int]
    train_age_bins: Sequence[int] | None  # training labels only; None: age_bins (set so)
    drop_boundary_ages: int  # N > 0 drops training people within N years of a threshold
    label_overrides: str | None  # FILE of label corrections; the folds use the archive's own
    n_folds: int
    fold: int
    split_seed: int  # draws the folds, so that ``seed`` varies training only
    face_boxes: str | None = None  # FILE of face boxes (older checkpoints have no such key)

    def __post_init__(self) -> None:  # the age thresholds checked once, as tuples
        object.__setattr__(self, "age_bins", check_age_bins(self.age_bins))
        train = check_age_bins(self.train_age_bins or self.age_bins)
        object.__setattr__(self, "train_age_bins", train)


@dataclass(frozen=True)
class LoaderOptions:
    """How the photos are served: size, batches, order and sampling, where they normalise."""

    seed: int  # training order and augmentation
    image_size: Sequence[int]
    batch_size: int
    num_workers: int | None  # None: as many as the CPUs allow
    pin_memory: bool
    normalize_on: str  # auto | device | loader
    sampler: str  # none | weighted
    sampler_balance: str  # class | age


@dataclass(frozen=True)
class CacheOptions:
    """Each photo decoded, prepared and resized once: where, and within what memory."""

    cache: str  # auto | memory | disk | none
    cache_max_gb: float | None
    cache_memory_fraction: float
    cache_dir: str | None  # this archive's folder of the user cache (also boxes and statistics)


GROUPS = (ArchiveOptions, LoaderOptions, CacheOptions)
ELSEWHERE = ("_target_", "mean", "std")  # keys of the node that are not these options


def grouped(data: Mapping) -> tuple[ArchiveOptions, LoaderOptions, CacheOptions]:
    """The ``data`` node's keys as the three option groups."""
    taken = {field.name for group in GROUPS for field in fields(group)}
    unknown = sorted(set(data) - taken - set(ELSEWHERE))
    if unknown:
        raise ValueError(f"not a data option: {', '.join(f'data.{key}' for key in unknown)}")
    return tuple(  # type: ignore[return-value]
        group(**{field.name: data[field.name] for field in fields(group) if field.name in data})
        for group in GROUPS
    )
