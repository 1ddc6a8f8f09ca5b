"""User mistakes get a message, not a stack trace (issue #13): a missing archive, a malformed
one, an unknown config option, pretrained weights with no network, a missing checkpoint.
``HYDRA_FULL_ERROR=1`` keeps the traceback.

The commands' error handling (``mistakes_as_messages``) runs here in this process around the
function a command calls; test_refusals.py starts the real ``train`` command to see the message,
the exit status and no traceback come out of the process itself."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from mask_age_gender.data.archive import ArchiveError
from mask_age_gender.errors import mistakes_as_messages
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.models.backbone import PretrainedUnavailable, create_backbone
from mask_age_gender.train import train

from .conftest import TINY, compose_config

TRACE = "Traceback (most recent call last)"


def exit_of(command: Callable[[], object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit status and stderr of ``command`` under the commands' error handling."""
    with pytest.raises(SystemExit) as stopped, mistakes_as_messages():
        command()
    return stopped.value.code, capsys.readouterr().err


def bad_archive(archive_copy: Path) -> Path:
    (archive_copy / "train" / "train.csv").write_text("id,gender,race,age,path\n1,x,Asian,20,a\n")
    return archive_copy


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The hub client offline with an empty cache (fails fast, even where there is a network)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))


MISTAKES = {  # mistake: (overrides, what stderr says)
    "bad archive": (
        lambda archive: [f"data.root={bad_archive(archive)}"],
        ["error: archive ", "train/train.csv row 1: gender 'x' is not male or female"],
    ),
    "pretrained offline": (
        lambda archive: [f"data.root={archive}", "model=resnet50", "model.pretrained=true"],
        ["error: model 'resnet50' with model.pretrained=true needs timm's model hub",
         "model.pretrained=false"],
    ),
}  # fmt: skip


@pytest.mark.usefixtures("no_hub")
@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_training_mistake_ends_with_its_message_and_exit_1(
    mistake: str, archive_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides, messages = MISTAKES[mistake]
    cfg = compose_config([*TINY, *overrides(archive_copy)], tmp_path / "run")
    status, stderr = exit_of(lambda: train(cfg), capsys)
    assert status == 1 and TRACE not in stderr
    for message in messages:
        assert message in stderr


def test_an_unknown_option_is_named_with_the_options_there_are(tmp_path: Path) -> None:
    """Hydra's own message (the command prints it without a traceback, as it does for every
    config error): what was asked for, and what the group offers."""
    with pytest.raises(MissingConfigException) as err:
        compose_config([*TINY, "model=nonexistent"], tmp_path / "run")
    for message in ("Could not find 'model/nonexistent'", "Available options in 'model'"):
        assert message in str(err.value)
    assert "resnet50" in str(err.value)


def test_hydra_full_error_keeps_the_traceback(
    archive_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    cfg = compose_config([*TINY, f"data.root={bad_archive(archive_copy)}"], tmp_path / "run")
    with pytest.raises(ArchiveError, match="archive "), mistakes_as_messages():
        train(cfg)  # raised on to Hydra, which prints its traceback


def test_pretrained_weights_without_a_network_fail_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    lookups: list[object] = []

    def no_network(host: object, *args: object, **kwargs: object) -> None:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # no cached copy
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(PretrainedUnavailable, match="huggingface.co does not resolve"):
        create_backbone("resnet18", pretrained=True)
    assert lookups == ["huggingface.co"]  # one look, not the hub client's half minute of retries
    assert constants.HF_HUB_OFFLINE is False  # offline only for the attempt


def test_predict_tells_a_missing_checkpoint_by_its_message(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = [
        f"ckpt={tmp_path / 'none.ckpt'}", f"data.root={archive}",
        f"output={tmp_path / 'submission.csv'}",
    ]  # fmt: skip
    cfg = compose_config(overrides, tmp_path, name="predict")
    status, stderr = exit_of(lambda: predict_archive(cfg), capsys)
    assert status == 1 and TRACE not in stderr
    assert f"error: checkpoint {tmp_path / 'none.ckpt'} not found" in stderr
    assert not (tmp_path / "submission.csv").exists()
