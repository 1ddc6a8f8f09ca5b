"""Drawing a person's seven photos with PIL: the face in layers, then exposure and sensor noise.

The looks and the noise field are drawn once per person; pose, lighting and the crop of the
noise change per shot, all from the person's own RNG in a fixed order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from mask_age_gender.labels import PHOTO_MASK, Mask

from .frame import Frame, place_face
from .looks import Color, Looks, draw_looks, mix, shade
from .plan import Person

NOISE_SIGMA = 6.0  # grey levels
GRAIN_PAD = 32  # pixels; a noise field this much larger than a photo is cropped per shot


class Shot(NamedTuple):
    """One drawn photo: its name (``mask1`` … ``normal``), the image and where the face is."""

    photo: str
    image: Image.Image
    face: Frame


def _draw_backdrop(d: ImageDraw.ImageDraw, looks: Looks, w: int, h: int) -> None:
    x0, y0, x1, y1 = looks.backdrop_box
    d.rectangle([(0, 0), (w, h)], fill=looks.background)
    d.rectangle([(x0 * w, y0 * h), (x1 * w, y1 * h)], fill=looks.backdrop)


def _draw_head(d: ImageDraw.ImageDraw, f: Frame, looks: Looks) -> None:
    """Body, hair behind the head, neck, ears and the face itself."""
    d.ellipse(f.box(-2.6, 1.45, 2.6, 4.6), fill=looks.clothes)
    half = 1.06 + 0.25 * looks.hair_length
    bottom = -0.1 + 1.9 * looks.hair_length
    d.ellipse(f.box(-half, -1.22, half, min(bottom, 0.4)), fill=looks.hair)
    if bottom > -0.4:
        d.rectangle(f.box(-half, -0.4, half, bottom), fill=looks.hair)
    d.rectangle(f.box(-0.42, 0.6, 0.42, 1.7), fill=shade(looks.skin, 0.9))
    for s in (-1, 1):
        d.ellipse(f.box(s * 0.9, -0.2, s * 1.1, 0.22), fill=shade(looks.skin, 0.93))
    d.ellipse(f.box(-1, -1, 1, 1), fill=looks.skin)
    if looks.stubble:
        d.chord(f.box(-0.8, -0.1, 0.8, 1.0), 20, 160, fill=shade(looks.skin, 0.8))


def _draw_age_marks(d: ImageDraw.ImageDraw, f: Frame, looks: Looks) -> None:
    """Wrinkles, eye bags and spots; each fades in over a span of years, so ages blend."""
    m = looks.age_marks

    def line(points: list[tuple[float, float]], strength: float) -> None:
        if strength > 0:
            d.line([f.pt(u, v) for u, v in points], looks_line(strength), width=f.width())

    def looks_line(strength: float) -> Color:
        return shade(looks.skin, 1 - 0.6 * m["depth"] * strength)

    for k, name in enumerate(("forehead", "forehead2", "forehead3")):
        v = -0.5 - 0.08 * k
        line([(-0.45, v + 0.02), (0, v - 0.01), (0.45, v + 0.02)], m[name])
    for s in (-1, 1):
        for dv in (-0.06, 0.0, 0.06):
            line([(s * 0.58, -0.15 + dv * 0.5), (s * 0.74, -0.15 + dv * 1.6)], m["crow"])
        line([(s * 0.2, 0.22), (s * 0.3, 0.42), (s * 0.36, 0.62)], m["fold"])
        line([(s * 0.25, -0.04), (s * 0.38, 0.0), (s * 0.52, -0.04)], m["bags"])
    if m["spots"] > 0:
        r = 0.035
        spot = mix(looks.skin, (120, 85, 60), 0.6 * m["spots"])
        for u, v in looks.spots:
            d.ellipse(f.box(u - r, v - r * 0.75, u + r, v + r * 0.75), fill=spot)


def _draw_features(d: ImageDraw.ImageDraw, f: Frame, looks: Looks) -> None:
    """Eyes, brows, nose, mouth and the personal mole."""
    for s in (-1, 1):
        d.ellipse(f.box(s * 0.38 - 0.16, -0.21, s * 0.38 + 0.16, -0.09), fill=(240, 238, 232))
        d.ellipse(f.box(s * 0.38 - 0.07, -0.2, s * 0.38 + 0.07, -0.1), fill=looks.eyes)
        d.ellipse(f.box(s * 0.38 - 0.03, -0.17, s * 0.38 + 0.03, -0.13), fill=(10, 10, 10))
        brow = [f.pt(s * 0.2, -0.3), f.pt(s * 0.38, -0.35), f.pt(s * 0.58, -0.31)]
        d.line(brow, fill=looks.brows, width=f.width(2.5))
    nose = shade(looks.skin, 0.78)
    d.line([f.pt(0.02, -0.08), f.pt(0.07, 0.2), f.pt(0.0, 0.26)], fill=nose, width=f.width())
    d.ellipse(f.box(-0.14, 0.2, -0.04, 0.27), fill=nose)
    d.ellipse(f.box(0.04, 0.2, 0.14, 0.27), fill=nose)
    d.ellipse(f.box(-0.26, 0.43, 0.26, 0.57), fill=looks.lips)
    d.line([f.pt(-0.25, 0.5), f.pt(0.25, 0.5)], fill=shade(looks.lips, 0.6), width=f.width())
    if looks.mole is not None:
        u, v = looks.mole
        d.ellipse(f.box(u - 0.025, v - 0.02, u + 0.025, v + 0.02), fill=(60, 40, 30))


def _draw_mask(d: ImageDraw.ImageDraw, f: Frame, looks: Looks, photo: str) -> None:
    """The mask: over nose and mouth, pulled below the nose or on the chin, or none."""
    mask = PHOTO_MASK[photo]
    if mask == Mask.NOT_WEAR:
        return
    if mask == Mask.WEAR:  # mask1..mask5: the same mask shifted a little, in a slightly other shade
        k = int(photo[-1]) - 1
        top = (-0.05, -0.01, -0.08, -0.03, 0.0)[k]
        colour = shade(looks.mask, (1.0, 0.92, 1.06, 0.96, 1.03)[k])
        pleats = (3, 0, 2, 3, 1)[k]
    else:
        top, colour, pleats = looks.incorrect_top, looks.mask, 2
    half = min(0.98, float(np.sqrt(1 - min(top, 0.95) ** 2)) + 0.15)
    side = max(top + 0.2, 0.55)  # where the sides turn into the arc under the chin
    bottom = max(1.06, top + 0.38)
    us = np.linspace(-half, half, 9)
    edge = [f.pt(u, top + 0.12 * (u / half) ** 2) for u in us]  # peaks over the nose
    t = np.linspace(0, np.pi, 13)
    arc = [f.pt(half * np.cos(a), side + (bottom - side) * np.sin(a)) for a in t]
    outline = shade(colour, 0.7 if sum(colour) > 200 else 1.6)
    for s in (-1, 1):  # ear loops
        d.line([f.pt(s * half, top + 0.1), f.pt(s * 1.02, -0.05)], fill=outline, width=f.width())
        d.line([f.pt(s * half, side), f.pt(s * 1.02, 0.15)], fill=outline, width=f.width())
    d.polygon(edge + arc, fill=colour, outline=outline, width=f.width())
    for k in range(pleats):
        v = top + (side - top) * (k + 1) / (pleats + 1) + 0.06
        pleat = [f.pt(u * 0.8, v + 0.05 * (u / half) ** 2) for u in us]
        d.line(pleat, fill=shade(colour, 0.82 if sum(colour) > 200 else 1.4), width=f.width())


def _draw_front(d: ImageDraw.ImageDraw, f: Frame, looks: Looks) -> None:
    """Glasses, then the fringe and (long hair) the locks falling beside the face."""
    if looks.glasses is not None:
        for s in (-1, 1):
            d.ellipse(
                f.box(s * 0.38 - 0.22, -0.3, s * 0.38 + 0.22, -0.01),
                outline=looks.glasses,
                width=f.width(1.5),
            )
        d.line([f.pt(-0.16, -0.17), f.pt(0.16, -0.17)], fill=looks.glasses, width=f.width(1.5))
    depth = looks.hairline
    d.chord(f.box(-1.05, -1.12, 1.05, -1.12 + 2 * depth), 180, 360, fill=looks.hair)
    if looks.hair_length > 0.45:
        low = min(-0.1 + 1.9 * looks.hair_length, 0.7)
        for s in (-1, 1):
            lock = [(s * 0.7, -0.9), (s * 1.14, -0.55), (s * 1.18, low), (s * 0.9, low)]
            d.polygon([f.pt(u, v) for u, v in lock], fill=looks.hair)


def _render_photo(looks: Looks, photo: str, frame: Frame, size: tuple[int, int]) -> Image.Image:
    """The person drawn into ``frame``, back to front, before any exposure or noise."""
    w, h = size
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    _draw_backdrop(d, looks, w, h)
    _draw_head(d, frame, looks)
    _draw_age_marks(d, frame, looks)
    _draw_features(d, frame, looks)
    _draw_mask(d, frame, looks, photo)
    _draw_front(d, frame, looks)
    return img


def _draw_grain(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A field of sensor noise a little larger than a photo, drawn once per person."""
    w, h = size
    noise = rng.standard_normal((h + GRAIN_PAD, w + GRAIN_PAD), dtype=np.float32)
    return Image.fromarray(np.clip(noise * NOISE_SIGMA + 128, 0, 255).astype(np.uint8))


def _expose(img: Image.Image, grain: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Per-shot brightness and tint, then a random crop of the person's noise field."""
    gain = rng.uniform(0.88, 1.12) * rng.uniform(0.96, 1.04, 3)
    lut = np.clip(np.arange(256)[None, :] * gain[:, None], 0, 255).astype(np.uint8)
    x, y = (int(k) for k in rng.integers(0, GRAIN_PAD + 1, 2))
    shot_grain = grain.crop((x, y, x + img.width, y + img.height)).convert("RGB")
    return ImageChops.add(img.point(lut.ravel().tolist()), shot_grain, offset=-128)


def _shoot(
    looks: Looks, photo: str, size: tuple[int, int], grain: Image.Image, rng: np.random.Generator
) -> Shot:
    """One photo: the person's look, with this shot's pose, lighting and sensor noise."""
    frame = place_face(looks.face, size, rng)
    return Shot(photo, _expose(_render_photo(looks, photo, frame, size), grain, rng), frame)


def photos_of(person: Person, seed: int, size: tuple[int, int]) -> list[Shot]:
    """The seven photos of a person, from the person's own RNG (seed, index)."""
    rng = np.random.default_rng([seed, person.index])
    looks = draw_looks(person, rng)
    grain = _draw_grain(size, rng)
    return [_shoot(looks, photo, size, grain, rng) for photo in PHOTO_MASK]
