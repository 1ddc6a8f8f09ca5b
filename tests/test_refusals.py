"""The commands' refusals as a user meets them, in one fresh process set up like a core install
with no network: every extra's modules made really unimportable (``sys.modules[name] = None``)
and the hub client offline from the start (``HF_HUB_OFFLINE=1``, read when huggingface_hub is
imported). The commands then run once per refusal, as ``python -m`` runs them, ``predict``
first (what it imports and registers itself, before ``train`` has). Each refusal is its message
and exit status 1, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mask_age_gender.extras import EXTRAS

from .conftest import TINY

START = """
import contextlib, io, json, runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # import NAME now raises ImportError
results = {}
for command in json.loads(sys.argv[2]):  # [name, module, *args]
    sys.argv, stderr = [command[1], *command[2:]], io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            runpy.run_module(command[1], run_name="__main__")
        except SystemExit as stop:
            results[command[0]] = [stop.code, stderr.getvalue()]
print(json.dumps(results))
"""
CHOSEN = {  # extra: an option a user chooses that needs it
    "wandb": "logger=wandb",
    "tensorboard": "logger=[csv,tensorboard]",
    "optuna": "hparams_search=optuna",
    "slurm": "hydra/launcher=submitit_local",
}
TRACE = "Traceback (most recent call last)"


@pytest.mark.slow
def test_every_refusal_is_its_message_and_exit_1(archive: Path, tmp_path: Path) -> None:
    runs, cwd = tmp_path / "runs", tmp_path / "cwd"
    cwd.mkdir()
    tiny = [*TINY, f"data.root={archive}"]
    missing = tmp_path / "none.ckpt"
    predict = [f"ckpt={missing}", f"data.root={archive}", f"output={runs / 'submission.csv'}"]
    commands = [["predict", "mask_age_gender.predict", *predict]]
    train = "mask_age_gender.train"
    commands += [
        [extra, train, *tiny, f"hydra.run.dir={runs / extra}", option]
        for extra, option in sorted(CHOSEN.items())
    ]
    commands.append(["no archive", train, f"hydra.run.dir={runs / 'no archive'}"])  # the default
    hub = [*tiny, "model=resnet50", "model.pretrained=true", f"hydra.run.dir={runs / 'hub'}"]
    commands.append(["hub", train, *hub])
    hidden = ",".join(module for extra in sorted(EXTRAS) for module in EXTRAS[extra])
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}  # an empty cache
    result = subprocess.run(
        [sys.executable, "-c", START, hidden, json.dumps(commands)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    stopped = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(stopped) == sorted(command[0] for command in commands)  # each stopped
    assert all(code == 1 and TRACE not in stderr for code, stderr in stopped.values())
    assert TRACE not in result.stdout and TRACE not in result.stderr
    assert list(cwd.iterdir()) == []  # nothing where the commands ran

    assert f"error: checkpoint {missing} not found" in stopped["predict"][1]
    assert not (runs / "submission.csv").exists()

    for extra, option in CHOSEN.items():  # one line naming the install, before any run folder
        expected = f"error: {option} needs the {extra} extra: "
        expected += f"pip install 'mask_age_gender[{extra}]'"
        assert stopped[extra][1].strip().splitlines() == [expected], extra
        assert not (runs / extra).exists()

    stderr = stopped["no archive"][1]
    assert f"error: no archive at data.root={cwd / 'data' / 'archive'}" in stderr
    assert "make train" in stderr
    assert not list((runs / "no archive").glob("summary.json"))
    assert not (runs / "no archive" / "checkpoints").exists()

    stderr = stopped["hub"][1]
    assert "error: model 'resnet50' with model.pretrained=true needs timm's model hub" in stderr
    for hint in ("model=efficientnet_lite0", "model.pretrained=false", "model.weights=PATH"):
        assert hint in stderr
