"""Shared fixtures: a tiny generated archive and the real training config, shrunk for the CPU."""

from __future__ import annotations

import multiprocessing.process
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from filelock import FileLock
from omegaconf import DictConfig

from mask_age_gender.config import CONF, compose_config  # noqa: F401  (CONF: for the tests)
from mask_age_gender.data.synthetic import generate_archive
from mask_age_gender.resolvers import CACHE_ENV
from mask_age_gender.training import build, callbacks

# Tiny models gain nothing from a second thread, and two threads per process stall badly when
# the tests share the two cores with subprocess runs.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
# The tests' own config options (the smoke-test models, a failing Optuna search), found through
# Hydra's search path beside conf/. A command that composes again from its task overrides alone
# (resume=DIR) needs the folder as `--config-dir`.
TEST_CONF = ROOT / "tests" / "conf"
SEARCHPATH = f"hydra.searchpath=['file://{TEST_CONF}']"
PEOPLE, EVAL_PEOPLE = 30, 3
SIZE = (48, 64)  # width, height of the generated photos

# A tiny run: 2 epochs of a tiny timm model on 64×48 inputs, in this process, on the CPU.
TINY = [
    SEARCHPATH,
    "model=test_resnet",  # tests/conf/model/test_resnet.yaml
    "trainer=cpu",
    "trainer.max_epochs=2",
    "data.image_size=[64,48]",
    "data.batch_size=16",
    "data.num_workers=0",
    "callbacks.progress_bar=null",
    "error_analysis=false",  # its plots cost seconds a run; the analysis tests turn it on
]


UNIT_TIER = os.environ.get("MASK_AGE_GENDER_UNIT_TIER") == "1"  # set by `make test-fast`
# The longest modules (the benchmark's fresh processes, a DDP sweep, a model that must learn,
# kill and resume) start first: pytest-xdist hands out whole modules (`--dist loadscope`) in
# collection order, and a long one handed out last would run on alone.
LONGEST_FIRST = ("test_bench", "test_scale", "test_faults", "test_labels_audit", "test_attention")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def unit_tier() -> Iterator[None]:
    """``make test-fast`` is the unit tier: a test (or its fixture) that fits a model or starts a
    process fails there, saying to mark it slow; ``make test`` runs everything."""
    if not UNIT_TIER:
        yield
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a unit-tier test fits a model or starts a process: mark it slow")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pl.Trainer, "fit", refuse)
        patch.setattr(subprocess.Popen, "__init__", refuse)
        patch.setattr(multiprocessing.process.BaseProcess, "start", refuse)  # loader workers too
        yield


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The caches (``paths.cache_dir``: boxes, statistics, disk photos) in a folder of the
    session's, never the user's ``~/.cache``; the commands the tests start inherit it."""
    folder = tmp_path_factory.mktemp("user_cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


def shared_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]
) -> Path:
    """``name``, a folder that the session's pytest-xdist workers share: ``make(folder)`` fills
    it in the first worker that asks, under a lock; the others wait and reuse it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' basetemps are siblings
    folder, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated archive with every real quirk; read-only by convention (copy to change)."""

    def make(out: Path) -> None:
        generate_archive(out, people=PEOPLE, eval_people=EVAL_PEOPLE, seed=0, size=SIZE)

    return shared_folder(tmp_path_factory, "archive", make)


@pytest.fixture
def archive_copy(archive: Path, tmp_path: Path) -> Path:
    """A private copy of the archive that a test may break."""
    return Path(shutil.copytree(archive, tmp_path / "archive"))


@pytest.fixture
def train_config(archive: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_config(*overrides)``: the tiny training config on the shared archive."""

    def make(*overrides: str) -> DictConfig:
        return compose_config([*TINY, f"data.root={archive}", *overrides], tmp_path / "run")

    return make


def add_run_callback(monkeypatch: pytest.MonkeyPatch, callback: pl.Callback) -> None:
    """Every run the test trains gets ``callback`` after the callbacks every run gets."""
    monkeypatch.setattr(
        build, "run_callbacks", lambda run_dir: [*callbacks.run_callbacks(run_dir), callback]
    )
