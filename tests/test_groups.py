"""Repeats summarised (``report --group``): a real tiny sweep of 2 losses × 3 seeds, plus a run
of the first loss that failed, grouped into one row per loss with paired deltas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mask_age_gender.report import main
from mask_age_gender.results.groups import group_runs
from mask_age_gender.results.ledger import collect_ledger
from mask_age_gender.train import train

from .conftest import TINY, compose_config
from .tiny_runs import write_started_run

LOSSES, SEEDS = ("ce", "focal"), (1, 2, 3)
SHORT = ["trainer.num_sanity_val_steps=0", "trainer.max_epochs=1", "optimizer.lr=0.01"]
TASKS = ("val_f1_mask", "val_f1_gender", "val_f1_age")


@pytest.fixture(scope="module")
def sweep(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``loss=…,seed=…`` for each pair, trained here; ``failed``: a loss=ce run that failed."""
    sweep = tmp_path_factory.mktemp("repeats")
    base = [*TINY, f"data.root={archive}", *SHORT, "scheduler=none"]
    for loss in LOSSES:
        for seed in SEEDS:
            train(compose_config([*base, f"loss={loss}", f"seed={seed}"], sweep / run(loss, seed)))
    write_started_run(sweep / "failed", [*base, "loss=ce", "seed=4"])
    failed = {"status": "failed", "reason": "ValueError: boom"}
    (sweep / "failed" / "summary.json").write_text(json.dumps(failed))
    return sweep


def run(loss: str, seed: int) -> str:
    return f"loss={loss},seed={seed}"


def scores(sweep: Path, loss: str, key: str = "val_f1") -> np.ndarray:
    """The runs' ``key`` from their summary.json, in seed order."""
    summaries = [json.loads((sweep / run(loss, s) / "summary.json").read_text()) for s in SEEDS]
    return np.array([summary[key] for summary in summaries])


@pytest.mark.slow
def test_repeats_are_one_row_per_configuration_with_mean_and_t_interval(sweep: Path) -> None:
    groups = group_runs(collect_ledger([sweep])).set_index("loss")
    assert sorted(groups.index) == ["ce", "focal"]
    assert list(groups.columns[: groups.columns.get_loc("n")]) == []  # only loss varies
    assert groups["n"].to_dict() == {"ce": 3, "focal": 3}
    assert groups["failed"].to_dict() == {"ce": 1, "focal": 0}
    assert "failed" in groups.loc["ce", "runs"].split(";")
    t = stats.t.ppf(0.975, len(SEEDS) - 1)
    for loss in LOSSES:
        for key in ("val_f1", *TASKS):
            values = scores(sweep, loss, key)
            row = groups.loc[loss]
            half = t * values.std(ddof=1) / np.sqrt(len(values))
            assert row[f"{key}_mean"] == pytest.approx(values.mean(), abs=1e-12)
            assert row[f"{key}_std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
            assert row[f"{key}_ci_low"] == pytest.approx(values.mean() - half, abs=1e-12)
            assert row[f"{key}_ci_high"] == pytest.approx(values.mean() + half, abs=1e-12)
    assert scores(sweep, "ce").std() > 0  # the seeds did differ


@pytest.mark.slow
def test_the_baseline_gives_paired_deltas_and_unpaired_runs_are_left_out(sweep: Path) -> None:
    ledger = collect_ledger([sweep])
    groups = group_runs(ledger, "loss=ce").set_index("loss")
    differences = scores(sweep, "focal") - scores(sweep, "ce")
    focal, ce = groups.loc["focal"], groups.loc["ce"]
    assert ce["baseline"] and not focal["baseline"] and pd.isna(ce["delta_mean"])
    assert focal["n_pairs"] == 3
    assert focal["delta_mean"] == pytest.approx(differences.mean(), abs=1e-12)
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    assert focal["delta_ci_low"] == pytest.approx(differences.mean() - half, abs=1e-12)
    assert focal["delta_ci_high"] == pytest.approx(differences.mean() + half, abs=1e-12)
    assert focal["excludes_0"] == (focal["delta_ci_low"] > 0 or focal["delta_ci_high"] < 0)
    # without focal's seed 3 and ce's seed 1, only seed 2 pairs: a delta, but no interval
    partial = ledger[~ledger["run"].isin([run("focal", 3), run("ce", 1)])]
    focal = group_runs(partial, "loss=ce").set_index("loss").loc["focal"]
    assert focal["n_pairs"] == 1 and focal["delta_mean"] == pytest.approx(differences[1])
    assert pd.isna(focal["delta_ci_low"]) and pd.isna(focal["excludes_0"])


@pytest.mark.slow
def test_the_intervals_match_hand_worked_students_t(sweep: Path) -> None:
    """The sweep's val F1s replaced by numbers worked out by hand, so a wrong formula (z for
    t, the population std, an unpaired difference) cannot agree with the expected values.

    ce 0.60, 0.64, 0.68: mean 0.64, sd 0.04, t(0.975, 2) = 4.302653, half-width
    4.302653 · 0.04 / √3 = 0.099366. focal 0.63, 0.66, 0.72 on the same seeds: differences
    0.03, 0.02, 0.04, mean 0.03, sd 0.01, half-width 0.024841 (unpaired it would be 0.095).
    """
    hand = {run("ce", s): v for s, v in zip(SEEDS, (0.60, 0.64, 0.68), strict=True)}
    hand |= {run("focal", s): v for s, v in zip(SEEDS, (0.63, 0.66, 0.72), strict=True)}
    ledger = collect_ledger([sweep])
    assert "delta_cam_face_share_mean" not in group_runs(ledger, "loss=ce")  # no maps here
    ledger["val_f1"] = ledger["run"].map(hand)  # the failed run keeps none
    ledger["val_cam_face_share"] = ledger["run"].map(hand) - 0.3  # the same differences
    groups = group_runs(ledger, "loss=ce").set_index("loss")
    ce, focal = groups.loc["ce"], groups.loc["focal"]
    assert ce["val_f1_mean"] == pytest.approx(0.64, abs=1e-9)
    assert ce["val_f1_std"] == pytest.approx(0.04, abs=1e-9)
    assert ce["val_f1_ci_low"] == pytest.approx(0.540634, abs=1e-6)
    assert ce["val_f1_ci_high"] == pytest.approx(0.739366, abs=1e-6)
    assert focal["delta_mean"] == pytest.approx(0.03, abs=1e-9)
    assert focal["delta_ci_low"] == pytest.approx(0.005159, abs=1e-6)
    assert focal["delta_ci_high"] == pytest.approx(0.054841, abs=1e-6)
    assert focal["excludes_0"]
    assert focal["delta_cam_face_share_mean"] == pytest.approx(0.03, abs=1e-9)
    assert focal["delta_cam_face_share_ci_low"] == pytest.approx(0.005159, abs=1e-6)
    assert focal["delta_cam_face_share_ci_high"] == pytest.approx(0.054841, abs=1e-6)
    # focal's seed 2 at 0.63 instead: differences 0.03, -0.01, 0.04, the interval takes in 0
    ledger.loc[ledger["run"] == run("focal", 2), "val_f1"] = 0.63
    focal = group_runs(ledger, "loss=ce").set_index("loss").loc["focal"]
    assert focal["delta_ci_low"] == pytest.approx(-0.045724, abs=1e-6)
    assert focal["delta_ci_high"] == pytest.approx(0.085724, abs=1e-6)
    assert not focal["excludes_0"]


@pytest.mark.slow
def test_the_command_prints_and_writes_the_groups_and_refuses_a_bad_baseline(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "groups"
    assert main([str(sweep), "--group", "--baseline", "loss=ce", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["loss", "n", "failed", "val_f1_mean"]
    assert "delta_ci_high" in lines[0] and "excludes_0" in lines[0]
    written = pd.read_csv(out / "ledger_groups.csv").set_index("loss")
    assert written.loc["focal", "delta_mean"] == pytest.approx(
        (scores(sweep, "focal") - scores(sweep, "ce")).mean()
    )
    assert len((out / "ledger_groups.md").read_text().splitlines()) == 2 + 2
    one = tmp_path / "one"  # a single run: n=1, no interval ("-")
    assert main([str(sweep / run("ce", 1)), "--group", "--out", str(one)]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    header = pd.read_csv(one / "ledger_groups.csv").columns.tolist()
    assert row[header.index("val_f1_ci_low")] == "-"
    for baseline, message in [
        ("loss=nope", "loss=nope matches no configuration (loss takes ce, focal)"),
        ("model=test_resnet", "matches 2 configurations"),
        ("seed=1", "no config key 'seed'"),
    ]:
        assert main([str(sweep), "--group", "--baseline", baseline, "--out", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err
    assert main([str(sweep), "--baseline", "loss=ce"]) == 2
    assert not list(tmp_path.glob("ledger*"))
