"""Sweep run folders named to fit a file name (issue #13): ``<job>_<overrides, shortened>``,
the full overrides kept in each run's ``.hydra/overrides.yaml`` and read from there."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mask_age_gender.resolvers import SUBDIR_BYTES, sweep_subdir
from mask_age_gender.results.ledger import collect_ledger

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
def test_an_optuna_search_with_many_overrides_fits_its_folder_names(
    archive: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    extra = [  # five overrides beyond the tiny run's: with Optuna's floats, 300+ bytes of names
        "model=test_resnet", "data.image_size=[32,24]", "trainer.max_epochs=1",
        "data.batch_size=16", "+trainer.limit_train_batches=2",
    ]  # fmt: skip
    run_sweep(archive, sweep, "hparams_search=optuna", "hydra.sweeper.n_trials=2", *extra)
    assert (sweep / "optimization_results.yaml").is_file()
    names = [part for path in sweep.rglob("*") for part in path.relative_to(sweep).parts]
    assert max(len(name.encode()) for name in names) <= NAME_MAX
    runs = sorted(path.parent.parent for path in sweep.glob("*/.hydra/overrides.yaml"))
    assert [run.name.split("_", 1)[0] for run in runs] == ["0", "1"]
    ledger = collect_ledger([sweep]).set_index("run")
    for run in runs:
        assert "data.root" not in run.name and "data.image_size=[32,24]" in run.name
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        given = dict(override.split("=", 1) for override in overrides)
        assert {"hparams_search=optuna", *extra} <= set(overrides)
        assert given["data.root"] == str(archive)  # left out of the name, kept here
        assert len(given["optimizer.lr"]) > 10  # Optuna's full-precision float, in full
        # the ledger reads the config from the run's files, not from its shortened name
        assert ledger.loc[run.name, "optimizer.lr"] == float(given["optimizer.lr"])
        assert ledger.loc[run.name, "status"] == "finished"
