"""Error analysis: the taxonomy on hand-built predictions, and every artefact of a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mask_age_gender.labels import NUM_CLASSES, AgeGroup, Gender, Mask, attribute_name, encode
from mask_age_gender.results.error_analysis import CATEGORIES, analyse
from mask_age_gender.results.run_report import FIGURES, write_error_analysis

from .tiny_runs import FINISHED, tiny_sweep

WEAR, INC, NOT = Mask.WEAR, Mask.INCORRECT, Mask.NOT_WEAR
M, F = Gender.MALE, Gender.FEMALE
YNG, MID, OLD = AgeGroup.YOUNG, AgeGroup.MIDDLE, AgeGroup.OLD

# (age, true (mask, gender, age group), predicted, primary category, wrong in 2+ attributes)
CASES = [
    (25, (WEAR, M, YNG), (WEAR, M, YNG), "", False),
    (40, (NOT, F, MID), (NOT, F, MID), "", False),
    (25, (WEAR, M, YNG), (INC, M, YNG), "incorrect_vs_worn", False),
    (40, (INC, F, MID), (WEAR, F, MID), "incorrect_vs_worn", False),
    (40, (WEAR, F, MID), (NOT, F, MID), "worn_vs_not_worn", False),
    (40, (NOT, F, MID), (INC, M, MID), "incorrect_vs_not_worn", True),
    (28, (WEAR, F, YNG), (NOT, F, MID), "worn_vs_not_worn", True),  # mask before age
    (40, (WEAR, M, MID), (WEAR, F, MID), "gender", False),
    (29, (WEAR, M, YNG), (WEAR, F, MID), "gender", True),
    (27, (WEAR, M, YNG), (WEAR, M, MID), "age_boundary", False),  # 27 = 30 - 3: inside
    (32, (WEAR, M, MID), (WEAR, M, YNG), "age_boundary", False),  # 32 = 30 + 3 - 1: inside
    (33, (WEAR, M, MID), (WEAR, M, YNG), "age_other", False),  # 33: outside
    (26, (WEAR, M, YNG), (WEAR, M, MID), "age_other", False),  # 26: outside
    (57, (WEAR, F, MID), (WEAR, F, OLD), "age_boundary", False),
    (62, (WEAR, F, OLD), (WEAR, F, MID), "age_boundary", False),
    (63, (WEAR, F, OLD), (WEAR, F, MID), "age_other", False),
    (29, (WEAR, F, YNG), (WEAR, F, OLD), "age_other", False),  # not adjacent groups
]


def prediction_table(cases: list[tuple], person: str = "p{}") -> pd.DataFrame:
    """A val_predictions.csv table for the cases; each predicted class gets probability 0.7."""
    rows = []
    for k, (age, true, pred, *_) in enumerate(cases):
        probs = np.full(NUM_CLASSES, 0.3 / (NUM_CLASSES - 1))
        probs[encode(*pred)] = 0.7
        rows.append(
            {
                "path": f"/nowhere/{person.format(k)}/mask1.jpg",
                "person": person.format(k),
                "age": age,
                "true": encode(*true),
                "pred": encode(*pred),
                **{f"p{c:02d}": p for c, p in enumerate(probs)},
            }
        )
    return pd.DataFrame(rows)


def test_each_hand_built_mistake_lands_in_its_category() -> None:
    run = analyse(prediction_table(CASES), age_bins=(30, 60), boundary_years=3)
    assert run.predictions["category"].tolist() == [case[3] for case in CASES]
    taxonomy = run.taxonomy
    expected = {name: sum(case[3] == name for case in CASES) for name in CATEGORIES}
    assert {name: e["count"] for name, e in taxonomy["categories"].items()} == expected
    assert taxonomy["mistakes"] == len(CASES) - 2 == sum(expected.values())
    assert sum(e["share"] for e in taxonomy["categories"].values()) == pytest.approx(1, abs=1e-3)
    assert taxonomy["multi_attribute"]["count"] == sum(case[4] for case in CASES)


def test_the_boundary_window_follows_the_age_bins_and_years() -> None:
    case = [(56, (WEAR, F, MID), (WEAR, F, OLD), "", False)]
    assert analyse(prediction_table(case), (30, 60)).predictions["category"][0] == "age_other"
    assert analyse(prediction_table(case), (30, 58)).predictions["category"][0] == "age_boundary"
    wide = analyse(prediction_table(case), (30, 60), boundary_years=4)
    assert wide.predictions["category"][0] == "age_boundary"
    assert attribute_name("age", MID, (30, 58)) == "middle (30–57)"
    assert attribute_name("mask", INC) == "incorrect" and attribute_name("gender", F) == "female"


def test_people_whose_label_most_photos_dispute_are_suspects() -> None:
    photos = 7 * [(40, (WEAR, F, MID), (WEAR, F, MID), "", False)]
    disputed = 4 * [(40, (WEAR, F, MID), (WEAR, M, MID), "", False)] + photos[:3]
    undisputed = 3 * [(40, (WEAR, F, MID), (WEAR, M, MID), "", False)] + photos[:4]
    table = pd.concat(
        [prediction_table(disputed, person="anna"), prediction_table(undisputed, person="bea")]
    )
    suspects = analyse(table).suspects
    assert suspects[["person", "attribute", "label", "predicted"]].values.tolist() == [
        ["anna", "gender", "female", "male"]
    ]
    assert suspects["disputing"].tolist() == [4] and suspects["photos"].tolist() == [7]


def test_a_run_without_mistakes_or_history_still_gets_every_file(tmp_path: Path) -> None:
    right = [(age, (WEAR, F, YNG), (WEAR, F, YNG), "", False) for age in (20, 25)]
    prediction_table(right).to_csv(tmp_path / "val_predictions.csv", index=False)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("data:\n  age_bins: [30, 58]\n")
    errors = write_error_analysis(tmp_path)
    assert errors["age_bins"] == [30, 58]
    assert errors["taxonomy"]["mistakes"] == 0 and errors["suspects"] == []
    assert all(e["share"] == 0 for e in errors["taxonomy"]["categories"].values())
    report = (tmp_path / "report.md").read_text()
    assert "No mistakes" in report and "No face share: no best checkpoint in the run" in report
    assert all(is_png(tmp_path / name) for name in FIGURES)


@pytest.fixture(scope="module")
def run_dir(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished run: train() wrote its error analysis."""
    return tiny_sweep(archive, tmp_path_factory) / next(iter(FINISHED))


@pytest.mark.slow
def test_a_run_writes_its_error_analysis(run_dir: Path) -> None:
    predictions = pd.read_csv(run_dir / "val_predictions.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    errors = json.loads((run_dir / "errors.json").read_text())
    taxonomy = errors["taxonomy"]
    mistakes = int((predictions["true"] != predictions["pred"]).sum())
    assert taxonomy["photos"] == len(predictions) and taxonomy["mistakes"] == mistakes
    assert sum(e["count"] for e in taxonomy["categories"].values()) == mistakes
    assert 0 <= taxonomy["multi_attribute"]["count"] <= mistakes
    assert errors["scores"]["f1"] == pytest.approx(summary["val_f1"], abs=1e-5)
    assert len(errors["per_class"]) == NUM_CLASSES
    assert sum(row["support"] for row in errors["per_class"]) == len(predictions)
    assert sum(row["photos"] for row in errors["by_age"]) == len(predictions)
    assert len(errors["confident_mistakes"]) == min(16, mistakes)
    confidences = [m["confidence"] for m in errors["confident_mistakes"]]
    assert confidences == sorted(confidences, reverse=True)
    assert errors["files"] == list(FIGURES)


@pytest.mark.slow
def test_the_report_holds_scores_taxonomy_classes_and_plots(run_dir: Path) -> None:
    report = (run_dir / "report.md").read_text()
    for heading in ("Scores", "Training", "Error taxonomy", "Takeaways", "Per class", "Label"):
        assert f"## {heading}" in report
    for category in (*CATEGORIES, "multi_attribute"):
        assert f"| {category}" in report
    per_class = report.split("## Per class")[1].split("##")[0]
    assert sum(line.startswith("| ") for line in per_class.splitlines()) == NUM_CLASSES + 1
    assert all(f"]({name})" in report for name in FIGURES)


@pytest.mark.slow
def test_the_plots_are_real_images(run_dir: Path) -> None:
    for name in FIGURES:
        assert is_png(run_dir / name), name
        with Image.open(run_dir / name) as image:
            assert min(image.size) >= 250, (name, image.size)
            assert len(set(image.convert("L").getdata())) > 20, name  # not a blank canvas


def is_png(path: Path) -> bool:
    """A readable PNG of more than a few kilobytes."""
    if not path.is_file() or path.stat().st_size < 5_000:
        return False
    with Image.open(path) as image:
        image.verify()
        return image.format == "PNG"
