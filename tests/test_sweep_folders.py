"""Sweep run folders named to fit a file name (issue #13): ``<job>_<overrides, shortened>``,
the full overrides kept in each run's ``.hydra/overrides.yaml`` and read from there."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mask_age_gender.resolvers import SUBDIR_BYTES, sweep_subdir
from mask_age_gender.results.ledger import collect_ledger

from .conftest import TEST_CONF
from .test_train import run_sweep

NAME_MAX = 255  # bytes in one file name (ext4, xfs, APFS, NTFS)


def test_a_sweep_folder_name_rounds_long_floats_and_keeps_the_rest() -> None:
    overrides = "loss.criterion.gamma=1.0,optimizer.lr=0.00012345678901234566,seed=7"
    assert sweep_subdir(3, overrides) == "3_loss.criterion.gamma=1.0,optimizer.lr=0.0001235,seed=7"
    assert (
        sweep_subdir(1, "x=1.2345678e-05,y=-0.5,model=exp01") == "1_x=1.235e-05,y=-0.5,model=exp01"
    )
    assert sweep_subdir(2, "model.weights=runs/a/best.pth") == "2_model.weights=runs_a_best.pth"
    assert sweep_subdir(0, "") == "0"


def test_a_sweep_folder_name_is_cut_to_its_byte_budget() -> None:
    long = ",".join(f"group{k}.option_with_a_long_name=é{k}" for k in range(40))
    name = sweep_subdir(12, long)
    prefix, cut = name.split("_", 1)
    assert prefix == "12" and cut.endswith("...") and long.startswith(cut[:-3])
    assert len(cut.encode()) <= SUBDIR_BYTES
    assert sweep_subdir(12, long[:40]) == f"12_{long[:40]}"  # short enough: whole


@pytest.mark.slow
def test_an_optuna_search_fits_its_folder_names_and_survives_a_failing_trial(
    archive: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    extra = [  # five overrides beyond the tiny run's: with Optuna's floats, 300+ bytes of names
        "model=test_resnet", "data.image_size=[64,48]", "trainer.max_epochs=1",
        "data.batch_size=16", "seed=3",
    ]  # fmt: skip
    search = "hparams_search=two_trials_one_failing"  # tests/conf: lr 0.00123456789…, then -1
    result = run_sweep(archive, sweep, search, *extra, flags=("--config-dir", str(TEST_CONF)))
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"]["optimizer.lr"] == 0.0012345678901234567 and best["best_value"] > 0
    assert "Invalid learning rate" in result.stderr + result.stdout  # the failing trial's reason
    names = [part for path in sweep.rglob("*") for part in path.relative_to(sweep).parts]
    assert max(len(name.encode()) for name in names) <= NAME_MAX
    runs = sorted(path.parent.parent for path in sweep.glob("*/.hydra/overrides.yaml"))
    assert [run.name.split("_", 1)[0] for run in runs] == ["0", "1"]
    ledger = collect_ledger([sweep]).set_index("run")
    for run in runs:
        assert "data.root" not in run.name and "data.image_size=[64,48]" in run.name
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        given = dict(override.split("=", 1) for override in overrides)
        assert {search, *extra} <= set(overrides)
        assert given["data.root"] == str(archive)  # left out of the name, kept here
        assert len(given["optimizer.weight_decay"]) > 10  # the full-precision float, in full
        # the ledger reads the config from the run's files, not from its shortened name
        assert ledger.loc[run.name, "optimizer.lr"] == float(given["optimizer.lr"])
        failed = float(given["optimizer.lr"]) < 0  # the grid's order is Optuna's
        assert ledger.loc[run.name, "status"] == ("failed" if failed else "finished")
