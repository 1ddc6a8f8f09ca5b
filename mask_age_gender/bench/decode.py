"""JPEG decoders compared on the same photos: speed, and whether they give PIL's pixels."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torchvision.io

from mask_age_gender.data.photos import JPEG_SUFFIXES, read_jpeg_opencv, read_pil

CHECKED = 16  # photos whose pixels are compared with PIL's
SAME_PIXELS = 1.0  # mean absolute difference (grey levels) still counted as the same image


def decode_opencv(path: str) -> np.ndarray:
    """What ``load_rgb`` does with a JPEG, failing where it would fall back to PIL (a figure
    named opencv must be OpenCV's)."""
    image = read_jpeg_opencv(path)
    if image is None:
        raise OSError(f"OpenCV cannot decode {path}")
    return image


def decode_torchvision(path: str) -> np.ndarray:
    """``decode_jpeg`` to C×H×W, then the H×W×3 array the augmentation takes."""
    image = torchvision.io.decode_jpeg(
        torchvision.io.read_file(path), torchvision.io.ImageReadMode.RGB
    )
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


DECODERS: dict[str, Callable[[str], np.ndarray]] = {
    "pil": read_pil,  # the reference: what the baseline's plain loop does
    "opencv": decode_opencv,
    "torchvision": decode_torchvision,
}


def compare_decoders(paths: Sequence[str], rounds: int = 3) -> dict[str, Any]:
    """Photos per second of each decoder (this thread, files in the page cache; the best of
    ``rounds`` interleaved passes, as other work shares the CPU) and its mean and largest pixel
    difference from PIL; the winner is the fastest of those that give PIL's pixels."""
    jpegs = [str(p) for p in paths if str(p).lower().endswith(JPEG_SUFFIXES)]
    if not jpegs:
        return {"photos": 0}
    reference = [read_pil(p) for p in jpegs[:CHECKED]]
    best = dict.fromkeys(DECODERS, 0.0)
    with torch.inference_mode():
        for _ in range(rounds):
            for name, decode in DECODERS.items():
                started = time.perf_counter()
                for path in jpegs:
                    decode(path)
                best[name] = max(best[name], len(jpegs) / (time.perf_counter() - started))
    figures: dict[str, Any] = {"photos": len(jpegs)}
    for name, decode in DECODERS.items():
        diffs = [
            np.abs(decode(p).astype(np.int16) - ref)
            for p, ref in zip(jpegs[:CHECKED], reference, strict=True)
        ]
        mean = float(np.mean([d.mean() for d in diffs]))
        figures[name] = {
            "img_s": round(best[name], 1),
            "mean_abs_diff_vs_pil": round(mean, 3),
            "max_abs_diff_vs_pil": int(max(d.max() for d in diffs)),
            "same_pixels": mean <= SAME_PIXELS,
        }
    same = [name for name in DECODERS if figures[name]["same_pixels"]]
    figures["winner"] = max(same, key=lambda name: figures[name]["img_s"])
    return figures
