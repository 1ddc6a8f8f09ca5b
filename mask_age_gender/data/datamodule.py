"""The LightningDataModule: read and check the archive, split by person, serve the three stages."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from mask_age_gender.data.archive import read_archive
from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.split import split_by_person
from mask_age_gender.data.transforms import build_transform
from mask_age_gender.labels import check_age_bins


class FaceDataModule(pl.LightningDataModule):
    """Train/val photos of one person-level fold of the archive, plus its eval photos if any."""

    def __init__(
        self,
        root: str,
        transform: Mapping,
        mean: Sequence[float],
        std: Sequence[float],
        image_size: Sequence[int] = (224, 224),
        batch_size: int = 32,
        num_workers: int | None = None,
        n_folds: int = 5,
        fold: int = 0,
        seed: int = 42,
        age_bins: Sequence[int] = (30, 60),
        verify_images: bool | str = True,
        pin_memory: bool = True,
    ):
        super().__init__()
        self.root = Path(root).expanduser().resolve()
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self.image_size = tuple(image_size)
        self.batch_size = batch_size
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.n_folds, self.fold, self.seed = n_folds, fold, seed
        self.age_bins = check_age_bins(age_bins)
        self.verify_images = verify_images
        self.pin_memory = pin_memory
        self.train_table: pd.DataFrame | None = None
        self.val_table: pd.DataFrame | None = None
        self.eval_table: pd.DataFrame | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read, check and split once; later calls reuse the tables."""
        if self.train_table is not None:
            return
        table, self.eval_table = read_archive(self.root, self.age_bins, self.verify_images)
        self.train_table, self.val_table = split_by_person(
            table, self.n_folds, self.fold, self.seed
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_table, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_table, train=False)

    def eval_dataloader(self) -> DataLoader | None:
        """The unlabeled eval photos in ``info.csv`` order, or None when the archive has none."""
        return None if self.eval_table is None else self._loader(self.eval_table, train=False)

    def _loader(self, table: pd.DataFrame, train: bool) -> DataLoader:
        labels = table["label"] if "label" in table else None
        transform = build_transform(
            self.transform, self.image_size, self.mean, self.std, train=train
        )
        dataset = FaceDataset(table["path"], labels, transform)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def summary(self) -> dict[str, int]:
        """Counts of the split, for the run's summary."""
        return {
            "train_people": int(self.train_table["person"].nunique()),
            "val_people": int(self.val_table["person"].nunique()),
            "train_images": len(self.train_table),
            "val_images": len(self.val_table),
        }


def default_workers() -> int:
    """DataLoader workers: the CPUs this process may use, less one for the main process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(8, (cpus or 1) - 1))
