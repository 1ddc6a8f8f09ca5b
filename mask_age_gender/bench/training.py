"""The real training run (DataModule + FaceClassifier + Trainer), then prediction, measured in a
fresh process so that its peak memory is its own:

    python -m mask_age_gender.bench.training SETTINGS.json RESULT.json [PHASE]

PHASE: ``train`` (training, then prediction: the single run's figures), ``train_only`` (a row of
the batch-size ladder) or ``breakdown`` (one step of the Trainer as ``train`` builds it, in parts).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from mask_age_gender.bench.breakdown import StepBreakdown, StepProfiler
from mask_age_gender.bench.build import Settings, prepared, synchronize
from mask_age_gender.inference.proba import eval_loader, predict_proba
from mask_age_gender.models.module import FaceClassifier
from mask_age_gender.training.build import build_trainer

MB = 1024  # ru_maxrss is in KiB on Linux
MIB = 2**20


class SteadyClock(pl.Callback):
    """Clock readings at the end of every training batch; the rate counts those after warm-up."""

    def __init__(self, warm: int):
        self.warm = warm
        self.ends: list[float] = []
        self.sizes: list[int] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any):
        synchronize(module.device)
        self.ends.append(time.perf_counter())
        self.sizes.append(len(args[1][0]))  # (outputs, batch, batch_idx)

    def images_per_second(self) -> float:
        # from the end of the last warm-up batch: measured batches' loading and steps both count
        return sum(self.sizes[self.warm :]) / (self.ends[-1] - self.ends[self.warm - 1])


def measure_training(settings: Settings, run_dir: Path, predict: bool = True) -> dict[str, Any]:
    """Train ``warm + measured`` batches as ``train.py`` would (no validation, checkpoints or
    loggers), then, with ``predict``, predict the same photos with the trained module."""
    config, datamodule = prepared(settings, run_dir)
    module = FaceClassifier(config)
    warm, measured = settings.batches(datamodule)
    clock = SteadyClock(max(warm, 1))
    trainer: pl.Trainer = instantiate(
        config["trainer"],
        callbacks=[clock],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        min_epochs=None,
        max_epochs=-1,
        max_steps=max(warm, 1) + measured,
        default_root_dir=str(run_dir),
    )
    on_cuda = trainer.strategy.root_device.type == "cuda"
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=datamodule)
    figures = {
        "train_img_s": clock.images_per_second(),
        # what the caching allocator handed out at most: the batch that still fits
        "train_peak_gpu_mb": round(torch.cuda.max_memory_allocated() / MIB, 1) if on_cuda else None,
    }
    if not predict:
        return figures
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB
    module.to(trainer.strategy.root_device)  # the Trainer hands it back on the CPU
    del trainer
    gc.collect()  # the persistent workers are joined, so their peak is counted below
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MB
    paths = datamodule.train_table["path"].tolist()
    return figures | {
        "predict_img_s": predict_rate(module, paths, datamodule),
        "train_peak_rss_mb": round(peak, 1),
        "train_workers_peak_rss_mb": round(workers_peak, 1),
    }


def measure_breakdown(settings: Settings, run_dir: Path) -> dict[str, Any]:
    """``warm + measured`` steps of the Trainer as ``train`` builds it (its callbacks, loggers and
    progress bar; one validation batch an epoch, which no step contains), profiled by
    :class:`StepProfiler`; the measured steps in parts."""
    config, datamodule = prepared(settings, run_dir)
    module = FaceClassifier(config)
    warm, measured = settings.batches(datamodule)
    profiler = {"_target_": f"{StepProfiler.__module__}.StepProfiler"}
    config["trainer"] |= {
        "profiler": profiler | {"dirpath": str(run_dir), "filename": "profile"},
        "min_epochs": None,
        "max_epochs": -1,
        "max_steps": warm + measured,
        "limit_val_batches": 1,  # validation is outside the steps; the callbacks still need it
        "num_sanity_val_steps": 0,
    }
    breakdown = {"_target_": f"{StepBreakdown.__module__}.StepBreakdown", "warm": warm}
    config["callbacks"] = {**(config.get("callbacks") or {}), "step_breakdown": breakdown}
    trainer = build_trainer(config, run_dir)
    trainer.fit(module, datamodule=datamodule)
    (callback,) = (c for c in trainer.callbacks if isinstance(c, StepBreakdown))
    on_cuda = trainer.strategy.root_device.type == "cuda"
    return {"breakdown": callback.breakdown(trainer.profiler, datamodule.batch_size, on_cuda)}


def predict_rate(module: FaceClassifier, paths: list[str], datamodule: Any) -> float:
    """Photos per second of ``predict``'s loader and ``predict_proba`` (fp32, as ``predict``
    runs) on the training device, after one warm-up batch; worker start-up counts."""
    batch, workers, device = datamodule.batch_size, datamodule.num_workers, module.device
    warm_up = eval_loader(module, paths[:batch], batch, workers)
    predict_proba(module, warm_up, device, progress=False)
    started = time.perf_counter()
    predict_proba(module, eval_loader(module, paths, batch, workers), device, progress=False)
    return len(paths) / (time.perf_counter() - started)


PHASES: dict[str, Callable[[Settings, Path], dict[str, Any]]] = {
    "train": measure_training,
    "train_only": lambda settings, run_dir: measure_training(settings, run_dir, predict=False),
    "breakdown": measure_breakdown,
}


def run_training(settings: Settings, phase: str = "train") -> dict[str, Any]:
    """``PHASES[phase]`` in a fresh Python process; its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        spec, result = Path(tmp) / "settings.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps(dataclasses.asdict(settings)))
        command = [sys.executable, "-m", "mask_age_gender.bench.training", str(spec), str(result)]
        done = subprocess.run([*command, phase], stdout=sys.stderr)  # stdout: the JSON only
        figures = json.loads(result.read_text()) if result.is_file() else {}
        if done.returncode != 0:
            cause = figures.get("error", "no result: see the log above")
            raise RuntimeError(f"bench {phase} process exited {done.returncode}: {cause}")
        return figures


def main(argv: list[str]) -> None:
    spec, result = (Path(a) for a in argv[:2])
    phase = argv[2] if len(argv) > 2 else "train"
    settings = Settings(**json.loads(spec.read_text()))
    with tempfile.TemporaryDirectory(prefix="bench-run-") as run_dir:
        try:
            figures = PHASES[phase](settings, Path(run_dir))
        except Exception as err:  # the cause, for the parent's report; the traceback is logged
            result.write_text(json.dumps({"error": f"{type(err).__name__}: {err}"}))
            raise
    result.write_text(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
