"""The phases that run without a Trainer: data alone, model alone, the baseline's plain loop."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from tqdm.auto import tqdm

from mask_age_gender.bench.build import Settings, fabric_for, model_for, synchronize
from mask_age_gender.data.datamodule import FaceDataModule
from mask_age_gender.labels import NUM_CLASSES

Batch = Sequence[torch.Tensor]


def images_per_second(
    batches: Iterator[Batch],
    work: Callable[[Batch], None],
    warm: int,
    measured: int,
    device: torch.device,
    desc: str,
) -> float:
    """Photos per second of ``work`` over ``measured`` batches, after ``warm`` batches."""
    photos, started = 0, time.perf_counter()
    for i in tqdm(range(warm + measured), desc=desc, leave=False):
        if i == warm:
            synchronize(device)
            photos, started = 0, time.perf_counter()
        batch = next(batches)
        work(batch)
        photos += len(batch[0])
    synchronize(device)
    return photos / (time.perf_counter() - started)


def epochs_of(loader: DataLoader) -> Iterator[Batch]:
    """The loader's batches, epoch after epoch, each epoch announced to its sampler."""
    for epoch in itertools.count():
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)  # as Lightning does: the next epoch's order
        yield from loader


def data_only(datamodule: FaceDataModule, settings: Settings) -> float:
    """The configured training DataLoader alone: decode (or cache), augment, collate."""
    loader = datamodule.train_dataloader()
    warm, measured = settings.batches(datamodule)
    return images_per_second(
        epochs_of(loader), lambda _: None, warm, measured, torch.device("cpu"), "data only"
    )


def model_only(config: dict[str, Any], datamodule: FaceDataModule, settings: Settings) -> float:
    """Forward, backward and optimizer step on batches already on the device: the ceiling."""
    fabric = fabric_for(config)
    module, optimizer = model_for(config, fabric)
    batch_size, (height, width) = config["data"]["batch_size"], config["data"]["image_size"]
    shape = (batch_size, 3, height, width)
    if datamodule.normalize_on == "device":  # uint8 batches, as the loader gives them
        images = torch.randint(0, 256, shape, dtype=torch.uint8, device=fabric.device)
    else:
        images = torch.randn(shape, device=fabric.device)
    labels = torch.randint(0, NUM_CLASSES, (batch_size,), device=fabric.device)
    warm, measured = settings.batches(datamodule)
    step = training_step(fabric, module, optimizer)
    batches = itertools.repeat((images, labels))
    return images_per_second(batches, step, warm, measured, fabric.device, "model only")


def training_step(fabric: Any, module: Any, optimizer: Any) -> Callable[[Batch], None]:
    """One step as Lightning's automatic optimization does it: loss, backward, step."""

    def step(batch: Batch) -> None:
        images, labels = (fabric.to_device(t) for t in batch[:2])
        with fabric.autocast():
            logits = module(images)
            loss = module.criterion(logits, module.head.targets(labels))
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()

    return step


class BaselineDataset(Dataset):
    """The competition baseline's reading: ``Image.open`` → Resize → ToTensor → Normalize."""

    def __init__(self, paths: Iterable[str], labels: Iterable[int], transform: Callable):
        self.paths, self.labels, self.transform = list(paths), list(labels), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        # not load_rgb: the baseline's PIL image into torchvision's transforms is what is timed
        image = Image.open(self.paths[index]).convert("RGB")
        return self.transform(image), self.labels[index]


def plain_loop(config: dict[str, Any], datamodule: FaceDataModule, settings: Settings) -> float:
    """A plain PyTorch loop over the same photos, as the competition's baseline trains: its
    dataset, a shuffling DataLoader with the same workers, the same model and optimizer."""
    data = config["data"]
    transform = T.Compose(
        [
            T.Resize(data["image_size"], interpolation=T.InterpolationMode.BILINEAR),
            T.ToTensor(),
            T.Normalize(data["mean"], data["std"]),
        ]
    )
    table = datamodule.train_table
    dataset = BaselineDataset(table["path"], table["label"], transform)
    fabric = fabric_for(config)
    loader = DataLoader(
        dataset,
        batch_size=datamodule.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=datamodule.num_workers,
        pin_memory=fabric.device.type == "cuda",
        persistent_workers=datamodule.num_workers > 0,
    )
    module, optimizer = model_for(config, fabric)
    warm, measured = settings.batches(datamodule)
    step = training_step(fabric, module, optimizer)
    return images_per_second(epochs_of(loader), step, warm, measured, fabric.device, "plain loop")
