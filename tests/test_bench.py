"""The benchmark runs on a tiny setting, and its figures are positive and consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mask_age_gender.bench.__main__ import overrides_of, parse_args, scale
from mask_age_gender.bench.build import Settings, compose_config, model_overrides

RATES = ("model_only_img_s", "data_only_img_s", "train_img_s", "plain_loop_img_s", "predict_img_s")
RATIOS = {
    "train/model_only": ("train_img_s", "model_only_img_s"),
    "train/plain_loop": ("train_img_s", "plain_loop_img_s"),
    "data_only/train": ("data_only_img_s", "train_img_s"),
}


@pytest.mark.slow
def test_benchmark_figures_are_positive_and_consistent(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    tiny = ["--model", "test_resnet", "--image-size", "64", "48", "--batch-size", "8"]
    few = ["--photos", "16", "--threads", "1", "--workers", "0", "--warmup", "1"]
    uint8 = ["--set", "data.normalize_on=device"]  # every phase feeds the model uint8 batches
    argv = [*tiny, *few, *uint8, "--archive", str(archive), "--repeats", "2"]
    command = [sys.executable, "-m", "mask_age_gender.bench", *argv, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)  # the command
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report  # printed and written
    assert len(report["rounds"]) == 2  # every figure is its best round's
    for rate in (*RATES, "train_peak_rss_mb"):
        assert report[rate] == max(r[rate] for r in report["rounds"])
    assert all(report[rate] > 0 for rate in RATES)
    for name, (numerator, denominator) in RATIOS.items():
        assert report[name] == pytest.approx(report[numerator] / report[denominator], rel=1e-3)
    assert report["train_peak_rss_mb"] > 0 and report["train_workers_peak_rss_mb"] >= 0
    settings = report["settings"]
    assert (settings["model"], settings["image_size"], settings["photos"]) == (
        "test_resnet",
        [64, 48],
        16,
    )
    assert settings["normalize_on"] == "device"
    decode = report["decode"]
    assert decode["photos"] > 0 and decode[decode["winner"]]["same_pixels"]
    assert all(decode[name]["img_s"] > 0 for name in ("pil", "opencv", "torchvision"))

    # --scale: 2× and 4× the photos in fresh processes, beside a round of the main measurement
    settings = Settings(overrides_of(parse_args(argv), archive), photos=16, warmup=1, threads=1)
    sizes = scale(settings, report["rounds"][:1], repeats=1)
    runs = sizes["runs"]
    assert [run["photos"] for run in runs] == [16, 32, 64]
    assert runs[0]["s_per_photo"] == pytest.approx(1 / report["rounds"][0]["train_img_s"], 1e-2)
    assert all(run["s_per_photo_runs"] == [run["s_per_photo"]] for run in runs)
    times = [run["s_per_photo"] for run in runs]
    assert all(t > 0 for t in times) and all(run["train_peak_rss_mb"] > 0 for run in runs)
    assert sizes["s_per_photo_spread"] == pytest.approx(max(times) / min(times) - 1, abs=1e-3)


def test_the_model_is_a_config_option_or_any_timm_name(tmp_path: Path) -> None:
    """``--model resnet50`` is conf/model/resnet50.yaml; ``--model test_resnet`` (a smoke-test
    model, whose option lives in tests/conf) is timm's, through ``model=timm``."""
    assert model_overrides("resnet50") == ["model=resnet50"]
    config = compose_config(
        overrides_of(parse_args(["--model", "test_resnet"]), tmp_path), tmp_path
    )
    assert config["model"]["name"] == "test_resnet" and not config["model"]["pretrained"]
    with pytest.raises(ValueError, match="--model resnet_9000: neither a conf/model option"):
        model_overrides("resnet_9000")
