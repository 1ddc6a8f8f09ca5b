"""The 95 % interval of validation macro F1 by bootstrap over validation people, computed once
per run (when it finishes) and read back by the report, ``errors.json`` and the ledger."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig
from sklearn.metrics import f1_score

from mask_age_gender.labels import NUM_CLASSES, TASKS, decode
from mask_age_gender.models.scores import score
from mask_age_gender.results import bootstrap
from mask_age_gender.results.bootstrap import (
    person_bootstrap,
    person_confusions,
    resampled_confusions,
    summary_intervals,
    summary_keys,
)
from mask_age_gender.results.ledger import collect_ledger
from mask_age_gender.results.run_report import write_error_analysis
from mask_age_gender.train import train

from .tiny_runs import FINISHED, tiny_sweep

PHOTOS = 7  # a person's photos


def people(n: int, right: float = 0.75, seed: int = 0) -> pd.DataFrame:
    """``n`` people of 7 photos each, one class per person; a person's photos are all right
    (share ``right`` of the people) or all wrong (a shifted class)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, NUM_CLASSES, n)
    pred = np.where(rng.random(n) < right, true, (true + rng.integers(1, NUM_CLASSES, n)) % 18)
    return pd.DataFrame(
        {
            "person": np.repeat([f"p{k}" for k in range(n)], PHOTOS),
            "true": np.repeat(true, PHOTOS),
            "pred": np.repeat(pred, PHOTOS),
        }
    )


def interval(table: pd.DataFrame, name: str = "f1", **options) -> tuple[float, float]:
    return person_bootstrap(table["true"], table["pred"], table["person"], **options)[name]


def sklearn_f1s(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    scores = {"f1": f1_score(true, pred, average="macro")}
    for task, t, p in zip(TASKS, decode(true), decode(pred), strict=True):
        scores[f"f1_{task}"] = f1_score(t, p, average="macro")
    return scores


@pytest.mark.parametrize("seed", [0, 5])
def test_the_interval_is_the_percentiles_of_sklearns_f1_over_drawn_people(seed: int) -> None:
    """The oracle draws the people as documented (a seeded multinomial over the people in order
    of appearance), repeats each drawn person's photos and scores them with sklearn."""
    rng = np.random.default_rng(11)
    names = [f"p{k}" for k in range(12)]
    person = np.repeat(names, PHOTOS)
    true = np.repeat(rng.integers(0, NUM_CLASSES, 12), PHOTOS)  # photos vary within a person
    pred = np.where(rng.random(len(true)) < 0.6, true, rng.integers(0, 4, len(true)))
    resamples = 40
    draws = np.random.default_rng(seed).multinomial(12, np.full(12, 1 / 12), size=resamples)
    scored = []
    for weights in draws:
        rows = np.concatenate(
            [np.flatnonzero(person == n).repeat(w) for n, w in zip(names, weights, strict=True)]
        )
        scored.append(sklearn_f1s(true[rows], pred[rows]))
    got = person_bootstrap(true, pred, person, resamples=resamples, seed=seed)
    for name in ("f1", "f1_mask", "f1_gender", "f1_age"):
        expected = np.percentile([s[name] for s in scored], [2.5, 97.5])
        assert got[name] == pytest.approx(tuple(expected), abs=1e-12), name


def test_the_interval_holds_the_score_and_is_seeded() -> None:
    table = people(100)
    scores = score(table["pred"], table["true"])
    intervals = person_bootstrap(table["true"], table["pred"], table["person"])
    assert set(intervals) == {"f1", "f1_mask", "f1_gender", "f1_age"}
    for name, (low, high) in intervals.items():
        assert low < scores[name] < high, name
    assert interval(table) == interval(table, seed=0)
    assert interval(table) != interval(table, seed=1)


def test_the_interval_narrows_as_people_are_added() -> None:
    table = people(60)
    four = pd.concat(  # the same people four times over, as other people
        [table.assign(person=table["person"] + f"-{k}") for k in range(4)], ignore_index=True
    )
    assert score(four["pred"], four["true"])["f1"] == pytest.approx(
        score(table["pred"], table["true"])["f1"]
    )
    low, high = interval(table)
    low4, high4 = interval(four)
    assert high4 - low4 < 0.7 * (high - low)  # ~1/2 by sqrt(4)


def test_a_person_is_resampled_whole() -> None:
    """Each person's seven photos identical (all right or all wrong): drawn whole, every cell of
    every resampled confusion is a multiple of 7, and the interval is wider than if the same
    photos were independent draws (each its own person)."""
    table = people(80)
    per_person = person_confusions(table["true"], table["pred"], table["person"])
    assert per_person.shape == (80, NUM_CLASSES, NUM_CLASSES)
    resampled = resampled_confusions(per_person, resamples=200)
    assert resampled.sum(axis=(1, 2)) == pytest.approx(np.full(200, len(table)))
    assert (resampled % PHOTOS == 0).all()
    low, high = interval(table)
    photos = table.assign(person=np.arange(len(table)))
    low_photo, high_photo = interval(photos)
    assert high - low > 1.8 * (high_photo - low_photo)  # ~sqrt(7) = 2.6


def test_the_summary_keeps_the_intervals_to_6_decimals_and_gives_them_back() -> None:
    intervals = {
        "f1": (0.1234564, 0.5),
        "f1_mask": (0.25, 0.9876545),
        "f1_gender": (0.0, 1.0),
        "f1_age": (0.3333333333, 0.6666666666),
    }
    kept = summary_keys(intervals, resamples=200, seed=3)
    assert kept == {
        "val_f1_ci_low": 0.123456,
        "val_f1_ci_high": 0.5,
        "val_f1_mask_ci_low": 0.25,
        "val_f1_mask_ci_high": 0.987654,  # round half to even, as Python's round
        "val_f1_gender_ci_low": 0.0,
        "val_f1_gender_ci_high": 1.0,
        "val_f1_age_ci_low": 0.333333,
        "val_f1_age_ci_high": 0.666667,
        "val_ci_resamples": 200,
        "val_ci_seed": 3,
    }
    assert summary_intervals({"val_f1": 0.4, **kept}) == {
        "f1": (0.123456, 0.5),
        "f1_mask": (0.25, 0.987654),
        "f1_gender": (0.0, 1.0),
        "f1_age": (0.333333, 0.666667),
    }
    assert summary_intervals({k: v for k, v in kept.items() if k != "val_f1_age_ci_high"}) is None
    assert summary_intervals({}) is None


@pytest.fixture
def bootstraps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the bootstraps this test runs: each draws its resamples once."""
    calls: list[int] = []
    draw = bootstrap.resampled_confusions

    def counted(*args, **kwargs) -> np.ndarray:
        calls.append(1)
        return draw(*args, **kwargs)

    monkeypatch.setattr(bootstrap, "resampled_confusions", counted)
    return calls


def report_intervals(run: Path) -> dict[str, list[float]]:
    """The interval table of report.md: score -> [ci_low, ci_high] as printed (4 decimals)."""
    section = (run / "report.md").read_text().split("95 % intervals by bootstrap")[1]
    rows = [line.split("|")[1:-1] for line in section.split("## ")[0].splitlines()]
    cells = [[cell.strip() for cell in row] for row in rows if len(row) == 4]
    return {row[0]: [float(row[2]), float(row[3])] for row in cells[2:]}  # past the header


@pytest.mark.slow
def test_a_run_bootstraps_once_and_its_report_reads_the_summary(
    train_config: Callable[..., DictConfig], bootstraps: list[int], tmp_path: Path
) -> None:
    cfg = train_config(
        "error_analysis=true", "trainer.max_epochs=1", "+trainer.limit_train_batches=1"
    )
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert len(bootstraps) == 1  # the summary's; the analysis (report, errors.json) read them
    summary = json.loads((run / "summary.json").read_text())
    kept = {
        name: [summary[f"val_{name}_ci_low"], summary[f"val_{name}_ci_high"]]
        for name in ("f1", "f1_mask", "f1_gender", "f1_age")
    }
    assert json.loads((run / "errors.json").read_text())["intervals"] == kept
    shown = report_intervals(run)
    assert shown == {name: [round(low, 4), round(high, 4)] for name, (low, high) in kept.items()}

    # predictions without a summary (or one from before the intervals): computed once, the same
    alone = tmp_path / "predictions_alone"
    alone.mkdir()
    shutil.copy(run / "val_predictions.csv", alone)
    errors = write_error_analysis(alone)
    assert len(bootstraps) == 2
    assert errors["intervals"] == kept
    assert report_intervals(alone) == shown


@pytest.mark.slow
def test_a_tiny_run_writes_its_interval(
    archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sweep = tiny_sweep(archive, tmp_path_factory)
    rows = collect_ledger([sweep]).set_index("run")
    widths = []
    for run in (sweep / name for name in FINISHED):
        summary = json.loads((run / "summary.json").read_text())
        for name in ("f1", "f1_mask", "f1_gender", "f1_age"):
            low, high = summary[f"val_{name}_ci_low"], summary[f"val_{name}_ci_high"]
            assert low <= summary[f"val_{name}"] <= high, (run.name, name)
            widths.append(high - low)
        assert summary["val_ci_resamples"] == 1000 and summary["val_ci_seed"] == 0
        ledger = rows.loc[run.name, ["val_f1_ci_low", "val_f1_ci_high"]].tolist()
        assert ledger == [summary["val_f1_ci_low"], summary["val_f1_ci_high"]]
        errors = json.loads((run / "errors.json").read_text())
        assert errors["intervals"]["f1"] == [summary["val_f1_ci_low"], summary["val_f1_ci_high"]]
        report = (run / "report.md").read_text()
        assert "95 % intervals by bootstrap over the validation people" in report
    assert max(widths) > 0.1  # barely trained, yet not all degenerate: 7 people vary
