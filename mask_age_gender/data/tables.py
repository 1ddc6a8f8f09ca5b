"""The archive as the data module's tables: read and checked, corrected, split by person."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mask_age_gender.data.archive import read_archive, relabel
from mask_age_gender.data.label_fixes import apply_overrides, read_overrides
from mask_age_gender.data.options import ArchiveOptions
from mask_age_gender.data.split import split_by_person
from mask_age_gender.labels import near_threshold


@dataclass
class Labelled:
    """Every training photo with its labels corrected (``data.label_overrides``), the same
    photos labelled as the archive says (they draw the folds: a correction moves no one to
    another fold), the eval photos (None: no ``eval/``), and the corrections applied."""

    photos: pd.DataFrame
    as_archived: pd.DataFrame
    eval: pd.DataFrame | None
    corrections: dict[str, int] | None


@dataclass
class Stages:
    """The photos of each stage: training (filtered and relabelled as ``data.*`` asks),
    validation (as labelled), eval."""

    train: pd.DataFrame
    val: pd.DataFrame
    labelled: Labelled


def read_labelled(options: ArchiveOptions) -> Labelled:
    """The archive read and checked, with its corrections; photo paths absolute whatever
    ``data.root`` looks like (``~``, relative): boxes and cached photos are found by them."""
    age_bins = options.age_bins
    root = Path(options.root).expanduser().resolve()
    table, eval_table = read_archive(root, age_bins, options.verify_images)
    photos, corrections = table, None
    if options.label_overrides:
        overrides = read_overrides(options.label_overrides, table["person"].unique())
        photos, corrections = apply_overrides(table, overrides, age_bins)
    return Labelled(photos, table, eval_table, corrections)


def read_stages(options: ArchiveOptions) -> Stages:
    """The archive split by person (folds drawn from its own labels, photos labelled with the
    corrections); then what only training does: people near an age threshold dropped
    (``drop_boundary_ages``) and the training age groups (``train_age_bins``)."""
    labelled = read_labelled(options)
    train, val = split_by_person(
        labelled.photos, options.n_folds, options.fold, options.split_seed, labelled.as_archived
    )
    (low, high), years = options.age_bins, options.drop_boundary_ages
    near = near_threshold(train["age"], low, years) | near_threshold(train["age"], high, years)
    train = train[~near].reset_index(drop=True)  # validation is never filtered
    train = relabel(train, options.train_age_bins)  # nor relabelled
    return Stages(train, val, labelled)
