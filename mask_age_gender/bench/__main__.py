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
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mask_age_gender.bench.build import (
    Settings,
    bench_archive,
    compose_config,
    fabric_for,
    limited_datamodule,
    model_overrides,
)
from mask_age_gender.bench.decode import compare_decoders
from mask_age_gender.bench.loops import data_only, model_only, plain_loop
from mask_age_gender.bench.training import run_training
from mask_age_gender.data.workers import cpu_count
from mask_age_gender.training.build import fitted_config

log = logging.getLogger("mask_age_gender.bench")
DECODE_PHOTOS = 200
SCALES = (1, 2, 4)
FLAT = 0.15  # --scale: seconds per photo within 15 % of each other


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="efficientnet_lite0", help="conf/model option or timm model name"
    )
    parser.add_argument("--image-size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=32)
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


def overrides_of(args: argparse.Namespace, archive: Path) -> list[str]:
    height, width = args.image_size
    overrides = [
        *model_overrides(args.model),
        f"data.root={archive.resolve()}",
        f"data.image_size=[{height},{width}]",
        f"data.batch_size={args.batch_size}",
    ]
    if args.workers is not None:
        overrides.append(f"data.num_workers={args.workers}")
    if not any(o.startswith("model.pretrained=") for o in args.set):
        overrides.append("model.pretrained=false")  # speed needs no download from timm's hub
    return overrides + args.set


def ratio(a: float, b: float) -> float:
    return round(a / b, 4)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase in turn; the figures and the settings they were measured with."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train.py
    archive = args.archive or bench_archive()
    settings = Settings(
        overrides_of(args, archive),
        args.photos,
        args.warmup,
        args.warm_epochs,
        args.epochs,
        args.threads,
    )
    report, rounds = {}, []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = compose_config(settings.overrides, Path(tmp))
        datamodule = limited_datamodule(config, settings.photos)
        config = fitted_config(config, datamodule)
        report["settings"] = settings_of(config, datamodule, settings) | {"repeats": args.repeats}
        paths = datamodule.train_table["path"].tolist()[:DECODE_PHOTOS]
        log.info("decoders on %d photos", len(paths))
        report["decode"] = compare_decoders(paths)
        for round_ in range(args.repeats):
            log.info("round %d of %d", round_ + 1, args.repeats)
            figures = in_process_phases(config, datamodule, settings)
            log.info("training in a fresh process")
            rounds.append(figures | run_training(settings))
    # each figure's best round, as timeit takes the best: noise only ever slows a run down
    report |= {key: round(max(r[key] for r in rounds), 2) for key in rounds[0]}
    report["train/model_only"] = ratio(report["train_img_s"], report["model_only_img_s"])
    report["train/plain_loop"] = ratio(report["train_img_s"], report["plain_loop_img_s"])
    report["data_only/train"] = ratio(report["data_only_img_s"], report["train_img_s"])
    if args.repeats > 1:
        report["rounds"] = [{key: round(value, 2) for key, value in r.items()} for r in rounds]
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
        "compile": bool(config["model"].get("compile", False)),
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    report = benchmark(args)
    out = args.out or Path("outputs/bench") / time.strftime("bench-%Y-%m-%d_%H-%M-%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2)
    out.write_text(text + "\n")
    print(text)
    log.info("written to %s", out)
    return report


if __name__ == "__main__":
    main()
