"""Training and prediction with the default model and its bundled ImageNet weights, with
sockets blocked: nothing is downloaded or even tried, and the weights trained are the bundled
ones. Both commands run as ``python -m`` runs them, one after the other in one fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from mask_age_gender.models.backbone import package_state_dict

from .conftest import TINY

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
BLOCK_NETWORK = """
import json, runpy, socket, sys

def refuse(self, address, *args, **kwargs):
    if self.family in (socket.AF_INET, socket.AF_INET6):  # said even where a library catches it
        print(f"network blocked by the test: connect to {address}", file=sys.stderr)
        raise OSError(f"network blocked by the test: connect to {address}")
    return connect(self, address, *args, **kwargs)

connect = socket.socket.connect
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
for command in json.loads(sys.argv[1]):  # [module, *args] each
    sys.argv = command
    runpy.run_module(command[0], run_name="__main__", alter_sys=True)
"""
PROBE = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)\n"


def offline(wrapper: Path, *commands: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``commands`` ([module, *args] each) in one fresh process with connections refused."""
    command = [sys.executable, str(wrapper), json.dumps(commands)]
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)


@pytest.mark.slow
def test_default_model_trains_and_predicts_offline_from_its_bundled_weights(
    archive: Path, tmp_path: Path
) -> None:
    wrapper = tmp_path / "offline.py"
    wrapper.write_text(BLOCK_NETWORK)
    (tmp_path / "probe.py").write_text(PROBE)
    blocked = offline(wrapper, ["probe"], cwd=tmp_path)  # the wrapper does block connections
    assert blocked.returncode != 0 and "network blocked by the test" in blocked.stderr

    run, work, output = tmp_path / "run", tmp_path / "work", tmp_path / "work" / "cli.csv"
    work.mkdir()
    overrides = [*TINY, "model=efficientnet_lite0", f"data.root={archive}", "trainer=debug"]
    train = ["mask_age_gender.train", *overrides, f"hydra.run.dir={run}"]
    ckpt = f"ckpt={run / 'checkpoints' / 'best.ckpt'}"
    predict = ["mask_age_gender.predict", ckpt, f"data.root={archive}", f"output={output}"]
    result = offline(wrapper, train, predict, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "network blocked" not in result.stderr  # not tried (albumentations' update check)
    best = run / "checkpoints" / "best.ckpt"
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    config = checkpoint["hyper_parameters"]["config"]
    assert config["model"]["name"] == "tf_efficientnet_lite0"
    # AdamW moves a weight by at most about lr per step (its update is m/sqrt(v) ≤ 1 times the
    # rate, plus the decay term); 2 steps from random init would be far off the bundled weights
    steps, lr = checkpoint["global_step"], config["optimizer"]["lr"]
    assert steps == 2
    bundled = package_state_dict()
    trained = {k: v for k, v in bundled.items() if not k.startswith("classifier.")}
    trained = {k: v for k, v in trained.items() if v.is_floating_point() and "running_" not in k}
    for name, weights in trained.items():
        moved = (checkpoint["state_dict"][f"backbone.{name}"] - weights).abs().max().item()
        assert moved <= steps * lr * 1.1, name

    submission = pd.read_csv(output)
    assert submission.equals(pd.read_csv(run / "submission.csv"))
    assert len(submission) == len(pd.read_csv(archive / "eval" / "info.csv"))
    assert sorted(p.name for p in work.iterdir()) == ["cli.csv", "probabilities.csv"]  # no Hydra
