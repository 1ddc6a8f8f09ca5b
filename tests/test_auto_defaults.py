"""Defaults that pick themselves: the default trainer's precision follows the device (bf16
mixed on GPUs that compute in bf16, fp16 mixed on older ones, fp32 on the CPU), and
``data.cache=auto`` keeps the photos in memory when they fit the memory budget, on disk
otherwise. A tiny run trains, resumes and predicts in bf16 mixed on the CPU, so dtype mistakes
of the GPU path show here."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from mask_age_gender.data import cache as photo_cache
from mask_age_gender.data.cache import CacheTooLarge
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.train import train
from mask_age_gender.training.build import build_datamodule

from .conftest import TINY, compose_config


def fake_cuda(monkeypatch: pytest.MonkeyPatch, present: bool, native_bf16: bool) -> None:
    """CUDA present or not; a GPU that computes in bf16 natively or only emulates it (torch's
    ``is_bf16_supported()`` says True for both unless told ``including_emulation=False``)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: present)
    monkeypatch.setattr(
        torch.cuda,
        "is_bf16_supported",
        lambda including_emulation=True: present and (native_bf16 or including_emulation),
    )


@pytest.mark.parametrize(
    ("present", "native_bf16", "default", "gpu"),
    [
        (False, False, "32-true", "16-mixed"),  # the CPU
        (True, True, "bf16-mixed", "bf16-mixed"),  # Ampere on
        (True, False, "16-mixed", "16-mixed"),  # V100, T4: bf16 only emulated
    ],
)
def test_the_default_trainer_picks_its_precision_from_the_device(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    present: bool,
    native_bf16: bool,
    default: str,
    gpu: str,
) -> None:
    fake_cuda(monkeypatch, present, native_bf16)
    trainer = compose_config([], tmp_path).trainer
    assert (trainer.accelerator, trainer.precision) == ("auto", default)
    assert compose_config(["trainer=gpu"], tmp_path).trainer.precision == gpu
    ddp = compose_config(["trainer=ddp"], tmp_path).trainer
    assert (ddp.devices, ddp.precision) == (-1, gpu)  # every visible GPU
    for cpu in (["trainer=cpu"], ["trainer=debug"], ["trainer.accelerator=cpu"]):
        assert compose_config(cpu, tmp_path).trainer.precision == "32-true", cpu


def built_cache(cfg: DictConfig) -> tuple[str, dict]:
    """The data module as ``train`` builds it, its training loader's first batch drawn through
    the photo cache: the cache built and the summary's record of it."""
    datamodule = build_datamodule(OmegaConf.to_container(cfg, resolve=True))
    next(iter(datamodule.train_dataloader()))
    return datamodule.train_dataloader().dataset.photos.mode, datamodule.summary()


def test_auto_cache_takes_memory_when_the_photos_fit_and_disk_when_not(
    train_config: Callable[..., DictConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_dir = tmp_path / "cache"
    cfg = train_config(f"data.cache_dir={cache_dir}")
    assert cfg.data.cache == "auto"  # the default
    photos = 30 * 7 + 3 * 7  # the archive's training and eval photos, all stages together
    need_gb = photos * 64 * 48 * 3 / 1e9
    caplog.set_level(logging.INFO, logger=photo_cache.__name__)

    monkeypatch.setattr(photo_cache, "available_memory_gb", lambda: 4.0)
    mode, summary = built_cache(cfg)
    assert mode == summary["cache"] == "memory" and summary["cache_gb"] > 0
    assert f"data.cache=auto: memory ({need_gb:.3g} GB of photos, 4.0 GB available)" in caplog.text
    assert not cache_dir.exists()

    caplog.clear()  # half of what is available is too little for the photos: disk
    monkeypatch.setattr(photo_cache, "available_memory_gb", lambda: 1.9 * need_gb)
    mode, summary = built_cache(cfg)
    assert mode == summary["cache"] == "disk" and summary["cache_gb"] == 0
    assert (
        f"data.cache=auto: disk ({need_gb:.3g} GB of photos, above the memory limit of "
        f"{0.95 * need_gb:.3g} GB: 0.5 of {1.9 * need_gb:.1f} GB available)" in caplog.text
    )
    assert len(list(cache_dir.rglob("*.npy"))) == photos  # every stage's, by prepare_data
    assert "photo cache: preparing 161 train photos" in caplog.text  # 30 people less 7 in val

    caplog.clear()  # data.cache_max_gb caps the budget too
    monkeypatch.setattr(photo_cache, "available_memory_gb", lambda: 4.0)
    mode, _ = built_cache(train_config(f"data.cache_dir={cache_dir}", "data.cache_max_gb=0.001"))
    assert mode == "disk" and "above the memory limit of data.cache_max_gb=0.001" in caplog.text


def test_explicit_caches_are_kept(
    train_config: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photo_cache, "available_memory_gb", lambda: 1e-6)  # almost nothing
    cache_dir = f"data.cache_dir={tmp_path / 'cache'}"
    for mode in ("none", "disk"):
        assert built_cache(train_config(cache_dir, f"data.cache={mode}"))[0] == mode
    with pytest.raises(CacheTooLarge, match="data.cache=memory needs .* above its budget"):
        built_cache(train_config(cache_dir, "data.cache=memory"))
    # a limit given is the user's choice, whatever is available
    memory = train_config(cache_dir, "data.cache=memory", "data.cache_max_gb=1")
    assert built_cache(memory)[0] == "memory"


BF16 = ["trainer.precision=bf16-mixed", "data.normalize_on=device", "model.channels_last=true"]


@pytest.mark.slow
def test_a_bf16_mixed_run_trains_resumes_and_predicts_on_the_cpu(
    archive: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    overrides = [*TINY, f"data.root={archive}", *BF16, "trainer.num_sanity_val_steps=0"]
    train(compose_config([*overrides, "trainer.max_epochs=1"], run))  # stopped after epoch 1
    first = json.loads((run / "summary.json").read_text())
    assert first["epochs_run"] == 1
    last = run / "checkpoints" / "last.ckpt"
    first_steps = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    train(compose_config([*overrides, f"ckpt_path={last}"], run))  # resumed: epoch 2 of 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_run"] == 2
    assert summary["resumed_from"] == str(last) and summary["normalize_on"] == "device"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 2 * first_steps > 0 and saved["hyper_parameters"]["config"][
        "trainer"
    ]["precision"] == ("bf16-mixed")
    val = pd.read_csv(run / "val_predictions.csv")  # predicted as trained: bf16 autocast
    assert len(val) == summary["val_images"]

    output = tmp_path / "predict" / "submission.csv"
    ckpt = run / "checkpoints" / "best.ckpt"
    predict_archive(
        compose_config(
            [f"data.root={archive}", f"ckpt={ckpt}", f"output={output}"],
            output.parent,
            name="predict",
        )
    )
    submission = pd.read_csv(output, dtype={"ImageID": str})
    info = pd.read_csv(archive / "eval" / "info.csv", dtype=str)
    assert submission["ImageID"].tolist() == info["ImageID"].tolist()
    assert submission["ans"].between(0, 17).all()
    probs = pd.read_csv(output.with_name("probabilities.csv")).drop(columns="ImageID").to_numpy()
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
