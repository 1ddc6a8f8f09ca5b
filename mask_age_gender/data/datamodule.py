"""The LightningDataModule: read and check the archive, split by person, serve the three stages."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from mask_age_gender.data.cache import check_cache_choice, choose_cache, fill_disk_cache
from mask_age_gender.data.dataset import FaceDataset
from mask_age_gender.data.faces.resolve import boxes_for, detect_missing, face_boxes_table
from mask_age_gender.data.options import ArchiveOptions, CacheOptions, LoaderOptions, grouped
from mask_age_gender.data.sampler import EpochSampler
from mask_age_gender.data.stats import channel_stats
from mask_age_gender.data.tables import Stages, read_stages
from mask_age_gender.data.transforms import Pipeline, build_transform, normalize_where
from mask_age_gender.data.workers import default_workers
from mask_age_gender.labels import TASK_CLASSES, decode

SAMPLERS = ("none", "weighted")
BALANCE_BY = {"class": "label", "age": "age_group"}  # data.sampler_balance → table column


class FaceDataModule(pl.LightningDataModule):
    """Train/val photos of one person-level fold of the archive, plus its eval photos if any."""

    def __init__(
        self,
        archive: ArchiveOptions,
        loader: LoaderOptions,
        cache: CacheOptions,
        transform: Mapping,
        mean: Sequence[float],
        std: Sequence[float],
    ):
        super().__init__()
        self.archive, self.loader, self.cache_options = archive, loader, cache
        self.root = Path(archive.root).expanduser().resolve()
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)  # train_stats: the split's, in setup
        self.image_size = tuple(loader.image_size)
        self.batch_size = loader.batch_size
        self.num_workers = default_workers() if loader.num_workers is None else loader.num_workers
        self.normalize_on = normalize_where(loader.normalize_on)  # auto made concrete, checked
        if loader.sampler not in SAMPLERS or loader.sampler_balance not in BALANCE_BY:
            raise ValueError(
                f"data.sampler must be one of {SAMPLERS} and data.sampler_balance one of "
                f"{tuple(BALANCE_BY)}; got {loader.sampler!r}, {loader.sampler_balance!r}"
            )
        check_cache_choice(cache.cache)  # before the archive is read
        # data.cache as asked; self.cache becomes what was built (auto: memory or disk) when
        # the first stage's dataset is, with the photos of all stages known
        self.cache, self.cache_dir = cache.cache, cache.cache_dir
        self._cache_limit_gb: float | None = None  # the memory limit all stages share
        self._datasets: dict[str, FaceDataset] = {}
        self.stages: Stages | None = None  # the tables, once read
        self._resume: dict[str, int] | None = None  # where a restored checkpoint left training
        self._set_up = False
        self._stats: tuple[list[float], list[float]] | None = None  # train_stats, once
        # transform=face_crop: the boxes, read once for all stages; faces found / photos per
        # stage, for the summary
        self._boxes: tuple[pd.DataFrame, Path] | None = None
        self._faces: dict[str, tuple[int, int]] = {}

    @classmethod
    def from_config(
        cls, data: Mapping, transform: Mapping, mean: Sequence[float], std: Sequence[float]
    ) -> FaceDataModule:
        """The data module of a run's ``data`` node (flat: ``data.KEY=VALUE``) and transform."""
        return cls(*grouped(data), transform, mean, std)

    @property
    def train_table(self) -> pd.DataFrame | None:
        return None if self.stages is None else self.stages.train

    @property
    def val_table(self) -> pd.DataFrame | None:
        return None if self.stages is None else self.stages.val

    @property
    def eval_table(self) -> pd.DataFrame | None:
        return None if self.stages is None else self.stages.labelled.eval

    def prepare_data(self) -> None:
        """The one-time work, whose results every process then reads from ``cache_dir``: the
        face boxes detected where missing (``transform=face_crop``), the training set's mean
        and std (``normalize: train_stats``), the disk cache filled (``data.cache=disk``).

        Lightning calls it in the node's first process while the others wait; ``train.py``
        calls it before it builds the model, whose normalisation depends on it. Each step skips
        what is done and writes its files whole, under a lock where two processes could write
        one file (ranks that srun or torchrun start together, a sweep's jobs sharing a cache),
        so the work is done once. Nothing is written under ``root``."""
        self._read()
        if self._pipeline("train").crops_faces:
            photos = [p for table in self._stages().values() for p in table["path"]]
            detect_missing(self.root, self.archive.face_boxes, self.cache_dir, photos)
        if self.transform["normalize"] == "train_stats":
            self._train_stats()
        if self._cache_mode() == "disk":
            for stage, table in self._stages().items():
                fill_disk_cache(self._dataset(stage, table).photos, self.num_workers, stage)

    def setup(self, stage: str | None = None) -> None:
        """This process's state, once: the tables, and the mean/std the loaders normalise
        with (read from where ``prepare_data`` left them)."""
        if self._set_up:
            return
        self._read()
        if self.transform["normalize"] == "train_stats":
            self.mean, self.std = self._train_stats()
            self._dataset("train", self.train_table).transform = self._pipeline("train")
        self._set_up = True

    def _read(self) -> None:
        """Read, check and split the archive once per process (``tables.py``)."""
        if self.stages is None:
            self.stages = read_stages(self.archive)

    def _train_stats(self) -> tuple[list[float], list[float]]:
        """The training split's mean and std, through its photo cache (data.cache): decoded
        once, kept for training; computed by one process, cached in ``cache_dir``."""
        if self._stats is None:
            train = self._dataset("train", self.train_table)
            self._stats = channel_stats(
                train.paths, train.transform, self.cache_dir, train.photos, train.boxes
            )
        return self._stats

    def _stages(self) -> dict[str, pd.DataFrame]:
        tables = {"train": self.train_table, "val": self.val_table, "eval": self.eval_table}
        return {stage: table for stage, table in tables.items() if table is not None}

    def normalization(self) -> tuple[list[float], list[float]]:
        """The input mean and std the loaders use (the training split's, once ``setup`` computed
        them for ``transform.normalize: train_stats``): the model needs them in its config."""
        return list(self.mean), list(self.std)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.train_table)

    def val_dataloader(self, shard: bool = True) -> DataLoader:
        """This process's share of the validation photos under DDP, each photo in one share
        (Lightning's default sampler repeats photos to even the shares: they would count twice
        in F1); ``shard=False``: all of them."""
        return self._loader("val", self.val_table, shard)

    def eval_dataloader(self) -> DataLoader | None:
        """The unlabeled eval photos in ``info.csv`` order, or None when the archive has none."""
        return None if self.eval_table is None else self._loader("eval", self.eval_table)

    def class_weights(self, tasks: Mapping[str, int]) -> dict[str, list[float]]:
        """Inverse-frequency weights per task of a head, from the training split only:
        ``n / (classes × count)``, so a balanced split gets weight 1 everywhere."""
        labels = self.train_table["label"].to_numpy()
        columns = {"class": labels, **dict(zip(TASK_CLASSES, decode(labels), strict=True))}
        weights = {}
        for task, n_classes in tasks.items():
            counts = np.bincount(columns[task], minlength=n_classes)
            weights[task] = (len(labels) / (n_classes * np.maximum(counts, 1))).round(6).tolist()
        return weights

    def _train_sampler(self) -> EpochSampler:
        """Shuffles the photos each epoch; ``sampler=weighted`` draws them so that each class
        (or age group) is equally likely, with replacement. Resumes where a checkpoint left.
        Under DDP, this process's share."""
        weights = None
        if self.loader.sampler == "weighted":
            groups = self.train_table[BALANCE_BY[self.loader.sampler_balance]].to_numpy()
            weights = (1.0 / np.bincount(groups)[groups]).tolist()
        sampler = EpochSampler(len(self.train_table), self.loader.seed, weights, *self._processes())
        if self._resume is not None:
            sampler.resume_at(self._resume["epoch"], self._resume["batches"] * self.batch_size)
        return sampler

    def state_dict(self) -> dict[str, int]:
        """Saved in checkpoints: the epoch in progress and the batches of it already trained."""
        if self.trainer is None:
            return {}
        epoch = self.trainer.current_epoch
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if done >= self.trainer.num_training_batches:  # saved at the end of an epoch
            return {"epoch": epoch + 1, "batches": 0}
        return {"epoch": epoch, "batches": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = state or None

    def _processes(self) -> tuple[int, int]:
        """The number of DDP processes and this one's rank (1, 0 outside a Trainer)."""
        return (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)

    def _loader(self, stage: str, table: pd.DataFrame, shard: bool = False) -> DataLoader:
        dataset = self._dataset(stage, table)
        train = stage == "train"
        sampler = self._train_sampler() if train else None
        replicas, rank = self._processes()
        if shard and replicas > 1:
            sampler = UnrepeatedDistributedSampler(dataset, replicas, rank, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            # worker seeds from each loader's own generator, in every stage: a loader without
            # one draws from the global RNG each time it is iterated (with 0 workers, every
            # epoch; with persistent ones, once), and that RNG is the model's (dropout, mixing)
            generator=torch.Generator().manual_seed(self.loader.seed),
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.loader.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def _dataset(self, stage: str, table: pd.DataFrame) -> FaceDataset:
        """The stage's dataset, built once: its photo cache outlives the loaders."""
        if stage not in self._datasets:
            labels = table["label"] if "label" in table else None
            self._cache_mode()
            room = self._cache_limit_gb - self.cache_gb  # the limit covers all stages together
            pipeline = self._pipeline(stage)
            boxes = self._face_boxes(stage, table) if pipeline.crops_faces else None
            self._datasets[stage] = FaceDataset(
                table["path"], labels, pipeline, self.cache, self.cache_dir, room, boxes
            )
        return self._datasets[stage]

    def _face_boxes(self, stage: str, table: pd.DataFrame) -> np.ndarray:
        """The face box of each photo of a stage (``faces/resolve.py``: data.face_boxes, else the
        detector's file that ``prepare_data`` wrote), NaN where no face was found."""
        if self._boxes is None:
            self._boxes = face_boxes_table(self.root, self.archive.face_boxes, self.cache_dir)
        boxes, source = self._boxes
        rows = boxes_for(list(table["path"]), boxes, self.root, source, f"{stage} photos")
        self._faces[stage] = (int((~np.isnan(rows[:, 0])).sum()), len(rows))
        return rows

    def _cache_mode(self) -> str:
        """``data.cache`` made concrete (``auto``: memory when all stages' photos fit the
        memory limit, else disk) and that limit, shared by the DDP processes of this machine."""
        if self._cache_limit_gb is not None:
            return self.cache
        photos = sum(len(table) for table in self._stages().values())
        processes = (
            self.trainer.num_devices if self.trainer else int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        )
        requested = self.cache
        self.cache, self._cache_limit_gb = choose_cache(
            requested,
            photos,
            self.image_size,
            self.cache_options.cache_max_gb,
            self.cache_options.cache_memory_fraction,
            processes,
        )
        if requested == "auto" and self.cache == "disk" and self.cache_dir is None:
            self.cache = "none"  # no folder to keep it in (a data module built by hand)
        return self.cache

    def _pipeline(self, stage: str) -> Pipeline:
        return build_transform(
            self.transform,
            self.image_size,
            self.mean,
            self.std,
            train=stage == "train",
            normalize_on=self.normalize_on,
        )

    @property
    def cache_gb(self) -> float:
        """Memory held by the photo caches of the stages built so far."""
        return sum(d.photos.summary()["cache_gb"] for d in self._datasets.values())

    def summary(self) -> dict[str, Any]:
        """Counts of the split, for the run's summary."""
        corrections = self.stages.labelled.corrections
        return {
            "train_people": int(self.train_table["person"].nunique()),
            "val_people": int(self.val_table["person"].nunique()),
            "train_images": len(self.train_table),
            "val_images": len(self.val_table),
            "cache": self.cache,
            "cache_gb": round(self.cache_gb, 4),
            "normalize_on": self.normalize_on,
            **self._face_summary(),
            **{f"label_overrides_{k}": n for k, n in (corrections or {}).items()},
        }

    def _face_summary(self) -> dict[str, Any]:
        """With a face crop: the boxes file and the faces found among the photos of the stages
        built (the others got the centre crop)."""
        if self._boxes is None:
            return {}
        return {
            "face_boxes": str(self._boxes[1].resolve()),
            "faces_found": sum(found for found, _ in self._faces.values()),
            "faces_photos": sum(photos for _, photos in self._faces.values()),
        }
