"""The benchmark runs on a tiny setting, and its figures are positive and consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mask_age_gender.bench.__main__ import main, overrides_of, parse_args, scale
from mask_age_gender.bench.breakdown import PARTS, table
from mask_age_gender.bench.build import Settings, compose_config, model_overrides
from mask_age_gender.bench.ladder import Case, ladder_row
from mask_age_gender.bench.training import measure_breakdown

RATES = ("model_only_img_s", "data_only_img_s", "train_img_s", "plain_loop_img_s", "predict_img_s")
RATIOS = {
    "train/model_only": ("train_img_s", "model_only_img_s"),
    "train/plain_loop": ("train_img_s", "plain_loop_img_s"),
    "data_only/train": ("data_only_img_s", "train_img_s"),
}


@pytest.mark.slow
def test_benchmark_figures_are_positive_and_consistent(
    archive: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    tiny = ["--model", "test_resnet", "--image-size", "64", "48", "--batch-size", "8"]
    few = ["--photos", "16", "--threads", "1", "--workers", "0", "--warmup", "1"]
    uint8 = ["--set", "data.normalize_on=device"]  # every phase feeds the model uint8 batches
    argv = [*tiny, *few, *uint8, "--archive", str(archive), "--repeats", "2"]
    report = main([*argv, "--out", str(out)])  # the command's; training runs in fresh processes
    assert json.loads(capfd.readouterr().out) == json.loads(out.read_text()) == report
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


def tiny_argv(archive: Path, *extra: str) -> list[str]:
    tiny = ["--model", "test_resnet", "--image-size", "64", "48", "--archive", str(archive)]
    return [*tiny, "--photos", "64", "--threads", "1", "--workers", "0", *extra]


@pytest.mark.slow
def test_a_training_step_breaks_into_parts_that_add_up_to_it(archive: Path, tmp_path: Path):
    """The Trainer as ``train`` builds it (checkpoints, loggers, progress bar, EMA on): every
    part a step has takes time, and the parts and ``other`` add up to the measured step."""
    argv = tiny_argv(archive, "--batch-size", "8", "--set", "callbacks/ema=on")
    settings = Settings(overrides_of(parse_args(argv), archive), photos=64, threads=1)
    breakdown = measure_breakdown(settings, tmp_path)["breakdown"]
    assert breakdown["steps"] == 8 and breakdown["batch_size"] == 8  # 1 warm, 1 measured epoch
    parts = breakdown["parts_ms"]
    assert list(parts) == list(PARTS)
    assert all(ms > 0 for ms in parts.values()), parts  # EMA too: callbacks/ema=on
    step = breakdown["step_ms"]
    assert sum(parts.values()) <= step + 1e-3 * len(parts)  # rounded to 1e-4 ms each
    assert sum(parts.values()) == pytest.approx(step, rel=1e-3)  # "other" is the rest
    assert breakdown["img_s"] == pytest.approx(8 * 1000 / step, rel=1e-3)
    assert "| **step** |" in table(breakdown)


@pytest.mark.slow
def test_the_ladder_writes_a_row_per_batch_size(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "ladder.json"
    report = main(
        [*tiny_argv(archive, "--batch-size", "8,16", "--warm-epochs", "0"), "--out", str(out)]
    )
    assert json.loads(out.read_text()) == report
    rows = report["rows"]
    assert [(r["model"], r["batch_size"], r["compile"]) for r in rows] == [
        ("test_resnet", 8, None),
        ("test_resnet", 16, None),
    ]
    for row in rows:
        assert row["error"] is None
        assert row["model_only_img_s"] > 0 and row["train_img_s"] > 0
        ratio = row["train_img_s"] / row["model_only_img_s"]
        assert row["train/model_only"] == pytest.approx(ratio, rel=1e-2)
        assert row["train_peak_gpu_mb"] is None  # the CPU: no GPU memory
    assert report["settings"]["device"] == "cpu"
    table = out.with_suffix(".md").read_text()
    assert table.count("| test_resnet |") == 2 and report["table"] in table


def test_a_ladder_row_that_fails_keeps_its_error(archive: Path) -> None:
    """A setting that cannot run (here: more photos than the archive has) leaves its error in
    its row, and null figures, instead of ending the ladder."""
    case = Case("test_resnet", 8, "none")
    settings = Settings(overrides_of(parse_args(tiny_argv(archive)), archive, case), photos=10**6)
    row = ladder_row(case, settings, repeats=1)
    assert row["batch_size"] == 8 and row["compile"] == "none"
    assert "ValueError" in row["error"] and "fewer than the 1000000 asked" in row["error"]
    assert row["train_img_s"] is None and row["model_only_img_s"] is None


def test_lists_of_models_batch_sizes_and_compile_modes() -> None:
    args = parse_args(
        ["--model", "resnet50,test_vit", "--batch-size", "32,64", "--compile", "none,max-autotune"]
    )
    assert (args.model, args.batch_size, args.compile) == (
        ["resnet50", "test_vit"],
        [32, 64],
        ["none", "max-autotune"],
    )
    assert parse_args([]).batch_size == [32] and parse_args(["--batch-size", "8"]).batch_size == [8]
    overrides = overrides_of(args, Path("x"), Case("test_vit", 64, "none"))
    assert "data.batch_size=64" in overrides and overrides[-1] == "model.compile=false"
    for wrong in (["--batch-size", "32,x"], ["--batch-size", "0"], ["--compile", "fast"]):
        with pytest.raises(SystemExit):
            parse_args(wrong)
    with pytest.raises(SystemExit, match="--breakdown measures one setting"):
        main(["--batch-size", "8,16", "--breakdown"])
