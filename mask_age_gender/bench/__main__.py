"""``python -m mask_age_gender.bench``: how fast training is, and how far from its ceiling.

    python -m mask_age_gender.bench      # efficientnet_lite0, 224×224, batch 32, 512 photos
    python -m mask_age_gender.bench --photos 64 --image-size 96 96 --batch-size 8
    python -m mask_age_gender.bench --set data.cache=none --set model.compile=true --scale

Prints one JSON object and writes it to ``--out`` (default ``outputs/bench/bench-<time>.json``).
Every phase uses the real training config (``--set`` overrides go to all of them), the same
photos (the training split cut to ``--photos``), batch size, image size and threads:

- ``model_only_img_s``: forward + backward + optimizer step on a batch already on the device;
- ``data_only_img_s``: the configured training DataLoader alone (decode or cache, augment, collate);
- ``train_img_s``: DataModule + FaceClassifier + Trainer, in a fresh process, steady state;
- ``plain_loop_img_s``: the competition baseline's loop (PIL → Resize → Normalize → model);
- ``predict_img_s``: ``predict``'s loader and ``predict_proba`` with the trained module;
- ``train_peak_rss_mb`` (that process) and ``train_workers_peak_rss_mb`` (its largest worker);
- ratios ``train/model_only``, ``train/plain_loop``, ``data_only/train``; ``decode``: PIL,
  OpenCV and torchvision's ``decode_jpeg`` on the same JPEGs; ``scale`` with ``--scale``.

``--repeats N`` runs the timed phases in N rounds (data, model, plain loop, training; then
again) and keeps each figure's best round, as ``timeit`` does: on a shared machine noise only
ever slows a run down. ``rounds`` lists every round's figures.

``--breakdown`` adds ``breakdown``: one training step of the Trainer as ``train`` builds it, in
host-side parts (ms per step; ``breakdown.py``), the fastest round's; a table goes to stderr.

Several models, batch sizes or compile modes (``--model resnet50,efficientnet_b0 --batch-size
32,64,128,256 --compile none,reduce-overhead``) make a ladder instead (``ladder.py``): one row
per combination with model-only and training images/s, their ratio and the training's peak GPU
memory, in ``rows``, and a markdown ``table`` (also on stderr and in ``OUT.md``); ``--ladder``
gives one setting that row alone.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mask_age_gender.bench.breakdown import table
from mask_age_gender.bench.build import (
    Settings,
    bench_archive,
    compose_config,
    fabric_for,
    limited_datamodule,
    model_overrides,
    prepared,
)
from mask_age_gender.bench.decode import compare_decoders
from mask_age_gender.bench.ladder import Case, best_of, ladder_row, ladder_table
from mask_age_gender.bench.loops import data_only, model_only, plain_loop
from mask_age_gender.bench.training import run_training
from mask_age_gender.data.workers import cpu_count
from mask_age_gender.files import write_json_atomic
from mask_age_gender.models.module import compile_mode

log = logging.getLogger("mask_age_gender.bench")
DECODE_PHOTOS = 200
SCALES = (1, 2, 4)
FLAT = 0.15  # --scale: seconds per photo within 15 % of each other


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=names,
        default=["efficientnet_lite0"],
        help="conf/model option or timm model name; a comma list makes a ladder",
    )
    parser.add_argument("--image-size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    parser.add_argument(
        "--batch-size", type=batch_sizes, default=[32], help="N or a comma list: a ladder"
    )
    parser.add_argument(
        "--compile",
        type=compile_modes,
        default=[None],
        metavar="MODE[,MODE]",
        help="model.compile: none, true, default, reduce-overhead, max-autotune (default: the "
        "config's); a comma list makes a ladder",
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="one training step in host-side parts"
    )
    parser.add_argument(
        "--ladder", action="store_true", help="ladder rows (model only, training), even for one"
    )
    parser.add_argument("--photos", type=int, default=512, help="training photos measured")
    parser.add_argument("--workers", type=int, help="data.num_workers (default: the config's)")
    parser.add_argument("--threads", type=int, default=cpu_count(), help="torch threads")
    parser.add_argument("--archive", type=Path, help="default: a synthetic 384×512 one, cached")
    parser.add_argument("--warmup", type=int, default=3, help="batches first, if no warm epochs")
    parser.add_argument("--warm-epochs", type=int, default=1, help="passes before the clock")
    parser.add_argument("--epochs", type=int, default=1, help="measured passes over the photos")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    parser.add_argument("--scale", action="store_true", help="training at 1×, 2×, 4× photos")
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of every timed phase; the best counts"
    )
    parser.add_argument("--out", type=Path, help="JSON file (default outputs/bench/…)")
    return parser.parse_args(argv)


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def batch_sizes(text: str) -> list[int]:
    """``32`` or ``32,64,128``: positive integers."""
    try:
        sizes = [int(size) for size in names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or N,N,… (integers)") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be positive")
    return sizes


def compile_modes(text: str) -> list[str]:
    """``none`` or ``none,default,reduce-overhead``: values ``model.compile`` takes."""
    modes = names(text)
    try:
        for mode in modes:
            compile_mode(mode)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return modes


def cases(args: argparse.Namespace) -> list[Case]:
    """Every (model, batch size, compile mode) asked, in that nesting."""
    return [Case(*c) for c in itertools.product(args.model, args.batch_size, args.compile)]


def overrides_of(args: argparse.Namespace, archive: Path, case: Case | None = None) -> list[str]:
    """The training config's overrides for ``case`` (default: the first one asked)."""
    model, batch_size, mode = case or cases(args)[0]
    height, width = args.image_size
    overrides = [
        *model_overrides(model),
        f"data.root={archive.resolve()}",
        f"data.image_size=[{height},{width}]",
        f"data.batch_size={batch_size}",
    ]
    if args.workers is not None:
        overrides.append(f"data.num_workers={args.workers}")
    if not any(o.startswith("model.pretrained=") for o in args.set):
        overrides.append("model.pretrained=false")  # speed needs no download from timm's hub
    compiled = [] if mode is None else [f"model.compile={'false' if mode == 'none' else mode}"]
    return overrides + args.set + compiled


def settings_for(args: argparse.Namespace, archive: Path, case: Case | None = None) -> Settings:
    return Settings(
        overrides_of(args, archive, case),
        args.photos,
        args.warmup,
        args.warm_epochs,
        args.epochs,
        args.threads,
    )


def ratio(a: float, b: float) -> float:
    return round(a / b, 4)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase in turn; the figures and the settings they were measured with."""
    started = time.perf_counter()
    archive = args.archive or bench_archive()
    settings = settings_for(args, archive)
    report, rounds, breakdowns = {}, [], []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config, datamodule = prepared(settings, Path(tmp))
        report["settings"] = settings_of(config, datamodule, settings) | {"repeats": args.repeats}
        paths = datamodule.train_table["path"].tolist()[:DECODE_PHOTOS]
        log.info("decoders on %d photos", len(paths))
        report["decode"] = compare_decoders(paths)
        for round_ in range(args.repeats):
            log.info("round %d of %d", round_ + 1, args.repeats)
            figures = in_process_phases(config, datamodule, settings)
            log.info("training in a fresh process")
            rounds.append(figures | run_training(settings))
            if args.breakdown:
                log.info("a training step in parts, in a fresh process")
                breakdowns.append(run_training(settings, "breakdown")["breakdown"])
    # each figure's best round, as timeit takes the best: noise only ever slows a run down
    report |= {key: best_of(r[key] for r in rounds) for key in rounds[0]}
    report["train/model_only"] = ratio(report["train_img_s"], report["model_only_img_s"])
    report["train/plain_loop"] = ratio(report["train_img_s"], report["plain_loop_img_s"])
    report["data_only/train"] = ratio(report["data_only_img_s"], report["train_img_s"])
    if args.repeats > 1:
        report["rounds"] = [{key: best_of([value]) for key, value in r.items()} for r in rounds]
    if breakdowns:
        report["breakdown"] = min(breakdowns, key=lambda b: b["step_ms"])  # the fastest round
        report["breakdown"]["rounds_step_ms"] = [b["step_ms"] for b in breakdowns]
        report["breakdown"]["table"] = table(report["breakdown"])
    if args.scale:
        report["scale"] = scale(settings, rounds, args.repeats)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def in_process_phases(config: dict, datamodule: Any, settings: Settings) -> dict[str, float]:
    """Data alone, model alone and the plain loop, in this process, one at a time."""
    figures = {}
    for name, phase in (
        ("data_only_img_s", lambda: data_only(datamodule, settings)),
        ("model_only_img_s", lambda: model_only(config, datamodule, settings)),
        ("plain_loop_img_s", lambda: plain_loop(config, datamodule, settings)),
    ):
        figures[name] = phase()
        gc.collect()  # the phase's loader workers go before the next phase starts
        log.info("%s %.2f", name, figures[name])
    return figures


def settings_of(config: dict, datamodule: Any, settings: Settings) -> dict[str, Any]:
    """What the figures were measured with, resolved (``auto`` and ``null`` made concrete)."""
    device = fabric_for(config).device
    channels_last = config["model"].get("channels_last", False)
    return {
        "model": config["model"]["name"],
        "image_size": list(datamodule.image_size),
        "batch_size": datamodule.batch_size,
        "photos": len(datamodule.train_table),
        "threads": settings.threads,
        "workers": datamodule.num_workers,
        "cache": getattr(datamodule, "cache", "none"),
        "normalize_on": datamodule.normalize_on,
        "channels_last": device.type == "cuda" if channels_last == "auto" else channels_last,
        "compile": compile_mode(config["model"].get("compile", False)) or False,
        "device": str(device),
        "precision": config["trainer"].get("precision"),
        "warmup_batches": settings.warmup,
        "warm_epochs": settings.warm_epochs,
        "epochs": settings.epochs,
        "archive": str(datamodule.root),
        "overrides": settings.overrides,
        "cpus": cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "peak_rss": "train_peak_rss_mb: ru_maxrss of the training process (a fresh one, "
        "model, data module and optimizer, predict excluded); train_workers_peak_rss_mb: "
        "the largest of its DataLoader workers (shared memory counts in each that touches it)",
        "model_only_and_plain_loop": "same model, optimizer, device, precision, channels_last "
        "and compile as training; plain_loop uses the same number of workers",
    }


def scale(settings: Settings, first: list[dict[str, float]], repeats: int) -> dict[str, Any]:
    """Training at 1×, 2× and 4× the photos, each ``repeats`` times in rounds (1×, 2×, 4×, 1×,
    …; the 1× runs are the main rounds') so that a slow spell of a shared machine does not fall
    on one size only. A size's figure is its fastest run."""
    samples: dict[int, list[dict[str, float]]] = {k: [] for k in SCALES}
    for round_ in range(repeats):
        samples[1].append(first[round_])
        for k in SCALES[1:]:
            samples[k].append(run_training(replace(settings, photos=k * settings.photos)))
    runs = []
    for k, figures in samples.items():
        times = sorted(1 / f["train_img_s"] for f in figures)
        runs.append(
            {
                "photos": k * settings.photos,
                "s_per_photo": round(times[0], 6),
                "s_per_photo_runs": [round(t, 6) for t in times],
                "train_peak_rss_mb": max(f["train_peak_rss_mb"] for f in figures),
                "train_workers_peak_rss_mb": max(f["train_workers_peak_rss_mb"] for f in figures),
            }
        )
    best = [run["s_per_photo"] for run in runs]
    median = [float(np.median(run["s_per_photo_runs"])) for run in runs]
    spread = max(best) / min(best) - 1
    return {
        "runs": runs,
        "repeats": repeats,
        "s_per_photo_spread": round(spread, 4),
        "median_s_per_photo_spread": round(max(median) / min(median) - 1, 4),
        "flat": spread <= FLAT,
        "rss_4x/1x": ratio(runs[-1]["train_peak_rss_mb"], runs[0]["train_peak_rss_mb"]),
    }


def ladder(args: argparse.Namespace, save: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """One row per (model, batch size, compile mode), and the settings they share; ``save``
    gets the report after every row, so a run cut short keeps the rows it finished."""
    started = time.perf_counter()
    archive = args.archive or bench_archive()
    plans = [(case, settings_for(args, archive, case)) for case in cases(args)]  # all valid?
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = compose_config(plans[0][1].overrides, Path(tmp))  # not fitted: no stats pass
        shared = settings_of(config, limited_datamodule(config, args.photos), plans[0][1])
    for key in ("model", "batch_size", "compile", "overrides"):  # the rows' own
        del shared[key]
    report: dict[str, Any] = {"settings": shared | {"overrides": args.set, "repeats": args.repeats}}
    rows = report["rows"] = []
    for case, settings in plans:
        rows.append(ladder_row(case, settings, args.repeats))
        save(report | {"table": ladder_table(rows), "complete": len(rows) == len(plans)})
    seconds = round(time.perf_counter() - started, 1)
    return report | {"table": ladder_table(rows), "complete": True, "seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    as_ladder = args.ladder or len(cases(args)) > 1
    if as_ladder and args.breakdown:
        raise SystemExit("--breakdown measures one setting: give one model, batch and compile mode")
    out = args.out or Path("outputs/bench") / time.strftime("bench-%Y-%m-%d_%H-%M-%S.json")
    if as_ladder:
        report = ladder(args, lambda partial: write_json_atomic(out, partial))
    else:
        report = benchmark(args)
    print(write_json_atomic(out, report).read_text(), end="")
    log.info("written to %s", out)
    tables = tables_of(report)
    if tables:
        out.with_suffix(".md").write_text(tables + "\n")
        print(tables, file=sys.stderr)  # stdout stays the JSON alone
    return report


def tables_of(report: dict[str, Any]) -> str:
    """The report's markdown tables: the ladder's, or the step breakdown's with its note."""
    if "table" in report:
        settings = report["settings"]
        return f"{settings['device']}, {settings['precision']}, images/s:\n\n{report['table']}"
    if "breakdown" in report:
        breakdown = report["breakdown"]
        return (
            f"one training step, batch {breakdown['batch_size']}, mean over "
            f"{breakdown['steps']} steps ({breakdown['note']}):\n\n{breakdown['table']}"
        )
    return ""


if __name__ == "__main__":
    main()
