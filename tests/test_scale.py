"""Scale: DDP over two CPU processes (gloo) scores each validation photo once and detects the
faces once; sweeps under DDP and through submitit leave their job folders and nothing else; the
SLURM launcher config."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from mask_age_gender.data.faces.boxes import TRUE_BOXES_FILE
from mask_age_gender.data.sampler import EpochSampler
from mask_age_gender.inference.checkpoints import load_classifier
from mask_age_gender.inference.ensemble import labelled_photos, validation_photos
from mask_age_gender.inference.proba import eval_loader, predict_proba
from mask_age_gender.models.scores import score
from mask_age_gender.resolvers import CACHE_ENV, archive_cache

from .conftest import CONF, TEST_CONF, TINY
from .test_train import run_app

DDP = ["trainer=ddp_cpu", "optimizer.lr=0.01"]  # lr: a model that predicts more than one class
DETECTED = re.compile(r"faces: detected (\d+) photos")
READ = re.compile(r"face_crop: boxes from (\S+) \(sha1 (\w+)\)")


class DdpSweep(NamedTuple):
    cwd: Path  # where the sweep started
    sweep: Path  # its folder
    archive: Path  # a copy without boxes
    cache: Path  # the user cache the jobs shared, empty at the start
    output: str  # the command's stdout and stderr


def tiny(*overrides: str) -> list[str]:
    """The tiny settings, less those that ``overrides`` replace, then ``overrides``."""
    named = {o.split("=", 1)[0] for o in overrides}
    return [*(o for o in TINY if o.split("=", 1)[0] not in named), *overrides]


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_ddp_shares_of_an_epoch_hold_it_once_and_resume_where_they_stopped() -> None:
    whole = list(EpochSampler(11, seed=3))
    shares = [list(EpochSampler(11, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 6  # padded with the epoch's first photo
    assert shares[0] + shares[1] != whole and sorted(shares[0] + shares[1]) == sorted(
        [*whole, whole[0]]
    )
    resumed = EpochSampler(11, seed=3, num_replicas=2, rank=1)
    resumed.resume_at(0, photos_done=4)
    assert list(resumed) == shares[1][4:]


@pytest.fixture(scope="module")
def ddp_sweep(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> DdpSweep:
    """A DDP sweep of one job with the face crop, on an archive without boxes and an empty
    cache: every DDP check below reads it (each DDP start costs two interpreter starts)."""
    root = tmp_path_factory.mktemp("ddp_sweep")
    no_boxes = Path(shutil.copytree(archive, root / "archive"))
    (no_boxes / TRUE_BOXES_FILE).unlink()
    cache, cwd = root / "user_cache", root / "cwd"
    cwd.mkdir()
    overrides = tiny(*DDP, "trainer.max_epochs=1", "transform=face_crop")
    result = run_app(  # --config-dir: a sweep's DDP ranks compose from task overrides alone
        *("--config-dir", str(TEST_CONF), "-m"), *overrides, f"data.root={no_boxes}",
        f"hydra.sweep.dir={cwd / 'sweep'}", cwd=cwd, env={CACHE_ENV: str(cache)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return DdpSweep(cwd, cwd / "sweep", no_boxes, cache, result.stdout + result.stderr)


@pytest.mark.slow
def test_a_ddp_sweep_leaves_its_job_folders_and_nothing_else(ddp_sweep: DdpSweep) -> None:
    assert [p.name for p in ddp_sweep.cwd.iterdir()] == ["sweep"]  # no folder of rank 1's
    jobs = sorted(p.name for p in ddp_sweep.sweep.iterdir())
    assert len(jobs) == 2 and jobs[0].startswith("0_") and jobs[1] == "multirun.yaml", jobs
    assert summary_of(ddp_sweep.sweep / jobs[0])["status"] == "finished"


@pytest.mark.slow
def test_ddp_validation_f1_is_the_single_process_f1_of_its_checkpoint(
    ddp_sweep: DdpSweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(ddp_sweep.cache))  # the boxes the job detected
    run = next(ddp_sweep.sweep.glob("0_*"))
    summary = summary_of(run)
    module = load_classifier(run / summary["best_ckpt"])
    val = validation_photos(labelled_photos(module), module)
    assert len(val) % 2 == 1  # the shares are uneven: a padding sampler would score a photo twice
    probs = predict_proba(module, eval_loader(module, list(val["path"]), 16, 0))
    single = score(torch.tensor(probs.argmax(axis=1)), torch.tensor(val["label"].to_numpy()))
    logged = pd.read_csv(run / "metrics.csv").groupby("epoch")[["val/f1", "val/acc"]].max()
    at_best = logged.loc[summary["best_epoch"]]
    print(f"DDP val/f1 {at_best['val/f1']:.8f}, one process {single['f1']:.8f}")
    assert 0 < single["f1"] < 1 and 0 < single["acc"] < 1
    assert at_best["val/f1"] == pytest.approx(single["f1"], abs=1e-6)
    assert at_best["val/acc"] == pytest.approx(single["acc"], abs=1e-6)  # counts every photo once
    assert summary["val_f1"] == pytest.approx(single["f1"], abs=1e-6)
    assert len(pd.read_csv(run / "val_predictions.csv")) == len(val)


@pytest.mark.slow
def test_two_ddp_processes_detect_the_faces_once_and_read_the_same_boxes(
    ddp_sweep: DdpSweep,
) -> None:
    """The ranks start together on an archive without boxes."""
    output = ddp_sweep.output
    detections = [int(n) for n in DETECTED.findall(output)]
    assert detections == [7 * 33], output[-3000:]  # once, every photo, by one process
    reads = READ.findall(output)
    boxes = Path(archive_cache(str(ddp_sweep.cache), str(ddp_sweep.archive))) / "face_boxes.csv"
    assert len(reads) == 2, output[-3000:]  # one per rank
    assert {Path(file) for file, _ in reads} == {boxes}
    assert len({digest for _, digest in reads}) == 1  # the same bytes


@pytest.mark.slow
def test_a_submitit_local_sweep_runs_its_job(archive: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_app(
        "-m", *tiny("trainer.max_epochs=1", "seed=1"), f"data.root={archive}",
        "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir())  # one job: each is an interpreter start
    assert len(jobs) == 3 and jobs[0] == ".submitit" and jobs[2] == "multirun.yaml", jobs
    assert summary_of(sweep / jobs[1])["status"] == "finished"


def test_the_slurm_launcher_asks_one_task_per_gpu_on_each_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_PARTITION", "gpu")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = ["hydra/launcher=slurm_gpu", "trainer=ddp", "trainer.num_nodes=2"]
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.nodes == 2
    assert launcher.tasks_per_node == launcher.gpus_per_node == 8
    assert cfg.trainer.devices == -1 and cfg.trainer.strategy == "ddp"
