"""Where the face sits in one photo: the one place that knows a shot's face geometry.

Every part of a photo is drawn in face units through a ``Frame``, so the frame of a shot is
also its true face position (the face ellipse spans -1..1 both ways).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """Maps face units (u across, v down; the face ellipse spans -1..1 both ways) to pixels."""

    cx: float
    cy: float
    rx: float
    ry: float

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return (self.cx + u * self.rx, self.cy + v * self.ry)

    def box(self, u0: float, v0: float, u1: float, v1: float) -> list[tuple[float, float]]:
        """Pixel bounding box of a face-unit box, corners in the order PIL wants."""
        return [self.pt(min(u0, u1), min(v0, v1)), self.pt(max(u0, u1), max(v0, v1))]

    def width(self, k: float = 1.0) -> int:
        return max(1, round(k * self.rx / 40))


def place_face(
    face: tuple[float, float, float, float], size: tuple[int, int], rng: np.random.Generator
) -> Frame:
    """This shot's frame: the person's face (fractions of the image) moved and scaled a little."""
    w, h = size
    cx, cy, rx, ry = face
    scale = rng.uniform(0.96, 1.04)
    return Frame(
        (cx + rng.normal(0, 0.015)) * w,
        (cy + rng.normal(0, 0.015)) * h,
        rx * scale * w,
        ry * scale * h,
    )
