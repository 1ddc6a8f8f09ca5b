"""The experiment ledger over a tiny sweep: rows, config columns, sorting, crashed runs, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mask_age_gender.report import main
from mask_age_gender.results.error_analysis import CATEGORIES
from mask_age_gender.results.ledger import COUNTS, SCORES, collect_ledger, sort_ledger

from .tiny_runs import CRASHED, CRASHED_MIDWAY, FINISHED, tiny_sweep


@pytest.fixture(scope="module")
def sweep(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sweep(archive, tmp_path_factory)


@pytest.mark.slow
def test_one_row_per_run_with_scores_counts_and_checkpoint(sweep: Path) -> None:
    ledger = collect_ledger([sweep]).set_index("run")
    assert sorted(ledger.index) == sorted([*FINISHED, CRASHED, CRASHED_MIDWAY])
    assert set(SCORES) | set(COUNTS) | {"seconds", "best_ckpt"} <= set(ledger.columns)
    for name in FINISHED:
        row = ledger.loc[name]
        summary = json.loads((sweep / name / "summary.json").read_text())
        errors = json.loads((sweep / name / "errors.json").read_text())["taxonomy"]
        assert row["status"] == "finished"
        assert row["val_f1"] == summary["val_f1"] and row["train_loss"] == summary["train_loss"]
        assert row["mistakes"] == errors["mistakes"]
        assert sum(row[name] for name in CATEGORIES) == row["mistakes"]
        assert row["multi_attribute"] == errors["multi_attribute"]["count"]
        assert (sweep / name / row["best_ckpt"]).is_file()
        assert row["model"] == "test_resnet" and row["head"] == name.split(",")[0][5:]
    assert ledger.loc[CRASHED, ["status", "model"]].tolist() == ["incomplete", "test_vit"]
    assert ledger.loc[CRASHED, list(SCORES)].isna().all()


@pytest.mark.slow
def test_a_run_that_died_after_an_epoch_shows_what_it_logged(sweep: Path) -> None:
    row = collect_ledger([sweep / CRASHED_MIDWAY]).iloc[0]
    assert row["run"] == CRASHED_MIDWAY and row["status"] == "incomplete"
    metrics = pd.read_csv(sweep / CRASHED_MIDWAY / "metrics.csv")
    assert row["val_f1"] == metrics["val/f1"].dropna().iloc[0]
    assert row["epochs_run"] == 1 and row["best_epoch"] == 0
    assert row["optimizer.lr"] == 0.001  # the config of the logger's hparams.yaml
    assert pd.isna(row["mistakes"]) and pd.isna(row["seconds"])


def config_columns_of(ledger: pd.DataFrame) -> list[str]:
    """The ledger's config columns: between run/status and the scores."""
    return list(ledger.columns[2 : ledger.columns.get_loc(SCORES[0])])


@pytest.mark.slow
def test_diff_keeps_only_the_config_keys_that_vary(sweep: Path) -> None:
    finished = [sweep / name for name in FINISHED]
    config = config_columns_of(collect_ledger(finished, diff=True))
    assert {"head", "optimizer.lr", "trainer.max_epochs"} <= set(config)
    ledger = collect_ledger(finished)
    assert all(ledger[key].astype(str).nunique() == 2 for key in config)
    assert not {"model", "loss", "head.name", "data.batch_size", "paths.output_dir"} & set(config)
    shown = set(config_columns_of(ledger))
    assert {"model", "loss", "optimizer", "scheduler", "optimizer.lr"} | set(config) <= shown


@pytest.mark.slow
def test_the_ledger_sorts_by_any_column(sweep: Path) -> None:
    ledger = collect_ledger([sweep])
    best_first = sort_ledger(ledger, "val_f1", descending=True)
    scores = best_first["val_f1"].dropna().tolist()
    assert scores == sorted(scores, reverse=True) and best_first["val_f1"].iloc[-1:].isna().all()
    assert sort_ledger(ledger, "run")["run"].tolist() == sorted(ledger["run"])
    with pytest.raises(KeyError, match="no column 'nope'"):
        sort_ledger(ledger, "nope")


def broken_runs(sweep: Path, folder: Path) -> dict[str, str]:
    """Runs that went wrong in every way the ledger must survive, by name: expected status."""
    shutil.copytree(sweep / next(iter(FINISHED)), folder / "garbled")
    (folder / "garbled" / "errors.json").write_text("{not json")
    (folder / "bad_yaml" / ".hydra").mkdir(parents=True)
    (folder / "bad_yaml" / ".hydra" / "config.yaml").write_text(": : not yaml [")
    (folder / "failed").mkdir()
    shutil.copy(sweep / CRASHED_MIDWAY / "metrics.csv", folder / "failed")
    failed = {"status": "failed", "reason": "ValueError: boom", "started": "2026-01-01T10:00"}
    (folder / "failed" / "summary.json").write_text(json.dumps(failed))
    return {"garbled": "unreadable", "bad_yaml": "incomplete", "failed": "failed"}


@pytest.mark.slow
def test_the_command_prints_and_writes_the_ledger_and_survives_broken_runs(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = broken_runs(sweep, tmp_path / "broken")
    out = tmp_path / "ledger"
    assert main([str(sweep), str(tmp_path / "broken"), "--sort", "run", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["run", "status"]
    runs = [*FINISHED, CRASHED, CRASHED_MIDWAY, *broken]
    assert all(any(line.split()[0] == run for line in lines) for run in runs)
    written = pd.read_csv(out / "ledger.csv").set_index("run")
    assert written.index.tolist() == sorted(runs)
    assert written.loc[list(broken), "status"].to_dict() == broken
    assert written.loc["garbled", "note"].startswith("JSONDecodeError")
    assert written.loc["failed", "note"] == "ValueError: boom"
    assert written.loc["failed", "val_f1"] == written.loc[CRASHED_MIDWAY, "val_f1"]
    assert not {"reason", "started"} & set(written.columns)  # a summary's text is no choice
    markdown = (out / "ledger.md").read_text().splitlines()
    header = [cell.strip() for cell in markdown[0].strip("|").split("|")]
    assert len(markdown) == 2 + len(runs) and header[:2] == ["run", "status"]


@pytest.mark.slow  # the real command, in its own process
def test_the_module_runs_as_a_command(sweep: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mask_age_gender.report", str(sweep / CRASHED)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert CRASHED in result.stdout and "incomplete" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.csv", "ledger.md"]


@pytest.mark.slow
def test_the_command_refuses_an_unknown_column_and_an_empty_folder(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([str(sweep), "--sort", "nope", "--out", str(tmp_path)]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 1
    assert "no runs under" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
