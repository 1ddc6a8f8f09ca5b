"""Synthetic copy of the competition archive: the real layout, the real quirks, drawn faces.

``generate_archive`` writes ``train/train.csv`` + ``train/images/<profile>/<photo>``,
``eval/info.csv`` + ``eval/images/<hashed id>.jpg`` and, outside ``eval/``, ``eval_truth.csv``
with the true 18-class labels, so the whole pipeline runs without the real data.

Each photo is a face drawn with PIL. Mask state, gender (hair, lips) and age (grey hair,
wrinkles, age spots, receding hair) are visible but imperfect: age cues grow smoothly with the
integer age, so 29/30 and 59/60 look alike, and 2 % of people are drawn against their gender
label. Background, skin, face shape, mask colour, glasses and moles are drawn once per person,
so an image-level train/val split leaks the face exactly like the real data does.

    python -m mask_age_gender.data.synthetic --out DIR --people 200 --eval-people 40 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from mask_age_gender.labels import GENDER_NAMES, PHOTO_MASK, Mask, age_group, encode

Color = tuple[int, int, int]

RACE = "Asian"
FEMALE_SHARE = 0.61
AGE_RANGES = ((18, 29), (30, 59), (60, 75))  # drawn uniformly inside the chosen range
AGE_RANGE_SHARE = (0.47, 0.45, 0.08)  # the real set's share of <30, 30–59, ≥60
AGAINST_GENDER_SHARE = 0.02  # drawn with the other gender's look: label noise
JUNK_FOLDER_SHARE = 0.05  # profile folders that carry AppleDouble files
EXTENSION_SHARE = {".jpeg": 0.10, ".png": 0.05}  # the rest are .jpg
JPEG_QUALITY = 90
NOISE_SIGMA = 6.0  # grey levels
GRAIN_PAD = 32  # pixels; a noise field this much larger than a photo is cropped per shot
# What macOS leaves beside each file it zips: an AppleDouble header, never an image.
APPLEDOUBLE = (
    b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\x09\x00\x00\x00\x32"
    + b"\x00" * 60
    + b"ATTR\x00\x00\x00\x00com.apple.quarantine\x00"
    + b"0081;00000000;Archive Utility;"
    + b"\x00" * 160
)
MASK_PALETTE: tuple[Color, ...] = (
    (236, 236, 232),  # white
    (170, 200, 228),  # surgical blue
    (38, 38, 44),  # black
    (140, 140, 146),  # grey
    (228, 178, 196),  # pink
    (44, 54, 96),  # navy
    (206, 192, 166),  # beige
    (118, 130, 92),  # khaki
)
HAIR_PALETTE: tuple[Color, ...] = ((24, 20, 20), (44, 32, 26), (68, 48, 34), (96, 70, 46))
GREY_HAIR: Color = (205, 205, 208)


@dataclass(frozen=True)
class Person:
    """One profile: the row of train.csv, or one eval person (``id`` empty)."""

    index: int  # seeds the person's own RNG, so looks do not depend on the archive's size
    gender: str
    age: int
    id: str = ""

    @property
    def path(self) -> str:
        return f"{self.id}_{self.gender}_{RACE}_{self.age}"


@dataclass
class _Plan:
    """Everything drawn from the archive-level RNG: who is in the archive and how it is laid out."""

    train: list[Person]
    eval: list[Person]
    extensions: list[list[str]]  # per train person, one extension per photo
    eval_order: list[int]  # info.csv order of the eval photos, as drawn person by person
    junk_folders: list[int] = field(default_factory=list)  # train indices with AppleDouble files


@dataclass(frozen=True)
class _Looks:
    """A person's appearance, drawn once and reused on all seven photos."""

    background: Color
    backdrop: Color  # a door or shelf behind the person
    backdrop_box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image
    clothes: Color
    skin: Color
    face: tuple[float, float, float, float]  # centre x, y and radii x, y as fractions
    eyes: Color
    hair: Color  # already greyed for the age
    brows: Color
    female_look: bool
    hair_length: float  # 0 (crew cut) … 1 (below the shoulders)
    hairline: float  # how far the fringe reaches down the forehead, in face units
    lips: Color
    mask: Color
    incorrect_top: float  # top edge of the mask worn wrong: below the nose or on the chin
    age_marks: dict[str, float]  # strength 0..1 of each age cue
    spots: tuple[tuple[float, float], ...]
    mole: tuple[float, float] | None
    glasses: Color | None
    stubble: bool


@dataclass(frozen=True)
class _Frame:
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


def _mix(a: Color, b: Color, t: float) -> Color:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shade(c: Color, k: float) -> Color:
    return tuple(int(min(255, max(0, round(x * k)))) for x in c)  # type: ignore[return-value]


def _jitter(rng: np.random.Generator, c: Color, amount: int) -> Color:
    return tuple(
        int(x) for x in np.clip(np.array(c) + rng.integers(-amount, amount + 1, 3), 0, 255)
    )  # type: ignore[return-value]


def _room_colour(rng: np.random.Generator) -> Color:
    """A wall or door colour: some grey, tinted a little towards any hue."""
    return _mix(_jitter(rng, (140, 135, 130), 70), _jitter(rng, (128, 128, 128), 127), 0.35)


def _ramp(x: float, start: float, span: float) -> float:
    return float(min(1.0, max(0.0, (x - start) / span)))


def label_of(person: Person, photo: str) -> int:
    """The 18-class label of one photo of a person."""
    return int(
        encode(int(PHOTO_MASK[photo]), int(GENDER_NAMES[person.gender]), age_group(person.age))
    )


# ---------------------------------------------------------------- who is in the archive


def _draw_people(rng: np.random.Generator, n: int) -> list[tuple[str, int]]:
    female = rng.random(n) < FEMALE_SHARE
    ranges = np.array(AGE_RANGES)[rng.choice(len(AGE_RANGES), size=n, p=AGE_RANGE_SHARE)]
    ages = ranges[:, 0] + (rng.random(n) * (ranges[:, 1] - ranges[:, 0] + 1)).astype(int)
    return [("female" if f else "male", int(a)) for f, a in zip(female, ages, strict=True)]


def _add_id_quirks(rng: np.random.Generator, people: list[Person]) -> list[Person]:
    """Two ids get a ``-1`` suffix; a third person takes a fourth one's id (different folder)."""
    if len(people) < 4:
        return people
    a, b, c, d = (int(i) for i in rng.choice(len(people), size=4, replace=False))
    out = list(people)
    for i in (a, b):
        out[i] = Person(out[i].index, out[i].gender, out[i].age, f"{out[i].id}-1")
    other = "female" if out[d].gender == "male" else "male"  # a different path, same id
    age = out[c].age if out[c].age != out[d].age else out[c].age + (1 if out[c].age < 75 else -1)
    out[c] = Person(out[c].index, other, age, out[d].id)
    return out


def _draw_extensions(rng: np.random.Generator, n_people: int, quirks: bool) -> list[list[str]]:
    n = n_people * len(PHOTO_MASK)
    ext = np.array([".jpg"] * n, dtype=object)
    if quirks:
        order, start = rng.permutation(n), 0
        for name, share in EXTENSION_SHARE.items():
            count = round(share * n)
            ext[order[start : start + count]] = name
            start += count
    return [list(ext[i : i + len(PHOTO_MASK)]) for i in range(0, n, len(PHOTO_MASK))]


def _plan_archive(people: int, eval_people: int, seed: int, quirks: bool) -> _Plan:
    """Draw the metadata of the whole archive without drawing any image."""
    rng = np.random.default_rng(seed)
    drawn = _draw_people(rng, people + eval_people)
    numbers = np.cumsum(rng.integers(1, 4, size=people))  # real ids are increasing, with gaps
    train = [
        Person(i, g, a, f"{int(k):06d}")
        for i, ((g, a), k) in enumerate(zip(drawn, numbers, strict=False))
    ]
    evaluation = [Person(people + i, g, a) for i, (g, a) in enumerate(drawn[people:])]
    extensions = _draw_extensions(rng, people, quirks)
    eval_order = [int(i) for i in rng.permutation(eval_people * len(PHOTO_MASK))]
    plan = _Plan(train, evaluation, extensions, eval_order)
    if quirks:
        plan.train = _add_id_quirks(rng, train)
        n_junk = max(1, round(JUNK_FOLDER_SHARE * people)) if people else 0
        plan.junk_folders = sorted(int(i) for i in rng.choice(people, n_junk, replace=False))
    return plan


# ---------------------------------------------------------------- how a person looks


def _draw_looks(person: Person, rng: np.random.Generator) -> _Looks:
    female_look = (person.gender == "female") != (rng.random() < AGAINST_GENDER_SHARE)
    # One offset moves all wrinkle cues, another the greying: some people look older than they are.
    wrinkle_age = person.age + rng.normal(0, 4)
    grey_age = person.age + rng.normal(0, 5)
    grey = _ramp(grey_age, 38, 30)
    base_hair = _jitter(rng, HAIR_PALETTE[rng.integers(len(HAIR_PALETTE))], 8)
    hair = _mix(base_hair, GREY_HAIR, grey)
    skin = _jitter(rng, _mix((238, 206, 180), (186, 142, 108), rng.random()), 6)
    if female_look:
        hair_length = rng.uniform(0.3, 1.0)
        hairline = rng.uniform(0.42, 0.72)
        red = (rng.integers(175, 215), rng.integers(55, 95), rng.integers(75, 110))
        lips = red if rng.random() < 0.8 else _mix(skin, (170, 90, 90), 0.5)
    else:
        hair_length = rng.uniform(0.0, 0.25)
        receding = rng.random() * (rng.random() < 0.5)  # half the men keep their hairline
        hairline = rng.uniform(0.38, 0.52) * (1 - 0.7 * receding * _ramp(wrinkle_age, 40, 30))
        lips = _mix(skin, (160, 90, 85), rng.uniform(0.3, 0.5))
    x0, y0 = rng.uniform(0.0, 0.7), rng.uniform(0.0, 0.5)
    return _Looks(
        background=_room_colour(rng),
        backdrop=_room_colour(rng),
        backdrop_box=(x0, y0, x0 + rng.uniform(0.2, 0.5), y0 + rng.uniform(0.3, 0.7)),
        clothes=_jitter(rng, (120, 120, 120), 110),
        skin=skin,
        face=(
            0.5 + rng.normal(0, 0.03),
            0.42 + rng.normal(0, 0.025),
            rng.uniform(0.2, 0.25),
            rng.uniform(0.2, 0.24),
        ),
        eyes=_jitter(rng, (52, 36, 26), 14),
        hair=hair,
        brows=_mix(base_hair, GREY_HAIR, 0.6 * grey),
        female_look=female_look,
        hair_length=float(hair_length),
        hairline=float(hairline),
        lips=tuple(int(c) for c in lips),  # type: ignore[arg-type]
        mask=_jitter(rng, MASK_PALETTE[rng.integers(len(MASK_PALETTE))], 10),
        incorrect_top=0.35 if rng.random() < 0.6 else 0.68,
        age_marks={
            "forehead": _ramp(wrinkle_age, 26, 14),
            "forehead2": _ramp(wrinkle_age, 34, 14),
            "forehead3": _ramp(wrinkle_age, 44, 14),
            "crow": _ramp(wrinkle_age, 32, 18),
            "fold": _ramp(wrinkle_age, 30, 20),
            "bags": _ramp(wrinkle_age, 40, 20),
            "depth": 0.3 + 0.5 * _ramp(wrinkle_age, 25, 50),  # wrinkles deepen till the end
            "spots": _ramp(wrinkle_age, 52, 12),
        },
        spots=tuple((rng.uniform(-0.7, 0.7), rng.uniform(-0.7, 0.1)) for _ in range(5)),
        mole=(rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.7)) if rng.random() < 0.4 else None,
        glasses=_jitter(rng, (40, 35, 35), 30) if rng.random() < 0.25 else None,
        stubble=not female_look and rng.random() < 0.2,
    )


# ---------------------------------------------------------------- drawing one photo


def _draw_backdrop(d: ImageDraw.ImageDraw, looks: _Looks, w: int, h: int) -> None:
    x0, y0, x1, y1 = looks.backdrop_box
    d.rectangle([(0, 0), (w, h)], fill=looks.background)
    d.rectangle([(x0 * w, y0 * h), (x1 * w, y1 * h)], fill=looks.backdrop)


def _draw_head(d: ImageDraw.ImageDraw, f: _Frame, looks: _Looks) -> None:
    """Body, hair behind the head, neck, ears and the face itself."""
    d.ellipse(f.box(-2.6, 1.45, 2.6, 4.6), fill=looks.clothes)
    half = 1.06 + 0.25 * looks.hair_length
    bottom = -0.1 + 1.9 * looks.hair_length
    d.ellipse(f.box(-half, -1.22, half, min(bottom, 0.4)), fill=looks.hair)
    if bottom > -0.4:
        d.rectangle(f.box(-half, -0.4, half, bottom), fill=looks.hair)
    d.rectangle(f.box(-0.42, 0.6, 0.42, 1.7), fill=_shade(looks.skin, 0.9))
    for s in (-1, 1):
        d.ellipse(f.box(s * 0.9, -0.2, s * 1.1, 0.22), fill=_shade(looks.skin, 0.93))
    d.ellipse(f.box(-1, -1, 1, 1), fill=looks.skin)
    if looks.stubble:
        d.chord(f.box(-0.8, -0.1, 0.8, 1.0), 20, 160, fill=_shade(looks.skin, 0.8))


def _draw_age_marks(d: ImageDraw.ImageDraw, f: _Frame, looks: _Looks) -> None:
    """Wrinkles, eye bags and spots; each fades in over a span of years, so ages blend."""
    m = looks.age_marks

    def line(points: list[tuple[float, float]], strength: float) -> None:
        if strength > 0:
            d.line([f.pt(u, v) for u, v in points], looks_line(strength), width=f.width())

    def looks_line(strength: float) -> Color:
        return _shade(looks.skin, 1 - 0.6 * m["depth"] * strength)

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
        spot = _mix(looks.skin, (120, 85, 60), 0.6 * m["spots"])
        for u, v in looks.spots:
            d.ellipse(f.box(u - r, v - r * 0.75, u + r, v + r * 0.75), fill=spot)


def _draw_features(d: ImageDraw.ImageDraw, f: _Frame, looks: _Looks) -> None:
    """Eyes, brows, nose, mouth and the personal mole."""
    for s in (-1, 1):
        d.ellipse(f.box(s * 0.38 - 0.16, -0.21, s * 0.38 + 0.16, -0.09), fill=(240, 238, 232))
        d.ellipse(f.box(s * 0.38 - 0.07, -0.2, s * 0.38 + 0.07, -0.1), fill=looks.eyes)
        d.ellipse(f.box(s * 0.38 - 0.03, -0.17, s * 0.38 + 0.03, -0.13), fill=(10, 10, 10))
        brow = [f.pt(s * 0.2, -0.3), f.pt(s * 0.38, -0.35), f.pt(s * 0.58, -0.31)]
        d.line(brow, fill=looks.brows, width=f.width(2.5))
    nose = _shade(looks.skin, 0.78)
    d.line([f.pt(0.02, -0.08), f.pt(0.07, 0.2), f.pt(0.0, 0.26)], fill=nose, width=f.width())
    d.ellipse(f.box(-0.14, 0.2, -0.04, 0.27), fill=nose)
    d.ellipse(f.box(0.04, 0.2, 0.14, 0.27), fill=nose)
    d.ellipse(f.box(-0.26, 0.43, 0.26, 0.57), fill=looks.lips)
    d.line([f.pt(-0.25, 0.5), f.pt(0.25, 0.5)], fill=_shade(looks.lips, 0.6), width=f.width())
    if looks.mole is not None:
        u, v = looks.mole
        d.ellipse(f.box(u - 0.025, v - 0.02, u + 0.025, v + 0.02), fill=(60, 40, 30))


def _draw_mask(d: ImageDraw.ImageDraw, f: _Frame, looks: _Looks, photo: str) -> None:
    """The mask: over nose and mouth, pulled below the nose or on the chin, or none."""
    mask = PHOTO_MASK[photo]
    if mask == Mask.NOT_WEAR:
        return
    if mask == Mask.WEAR:  # mask1..mask5: the same mask shifted a little, in a slightly other shade
        k = int(photo[-1]) - 1
        top = (-0.05, -0.01, -0.08, -0.03, 0.0)[k]
        colour = _shade(looks.mask, (1.0, 0.92, 1.06, 0.96, 1.03)[k])
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
    outline = _shade(colour, 0.7 if sum(colour) > 200 else 1.6)
    for s in (-1, 1):  # ear loops
        d.line([f.pt(s * half, top + 0.1), f.pt(s * 1.02, -0.05)], fill=outline, width=f.width())
        d.line([f.pt(s * half, side), f.pt(s * 1.02, 0.15)], fill=outline, width=f.width())
    d.polygon(edge + arc, fill=colour, outline=outline, width=f.width())
    for k in range(pleats):
        v = top + (side - top) * (k + 1) / (pleats + 1) + 0.06
        pleat = [f.pt(u * 0.8, v + 0.05 * (u / half) ** 2) for u in us]
        d.line(pleat, fill=_shade(colour, 0.82 if sum(colour) > 200 else 1.4), width=f.width())


def _draw_front(d: ImageDraw.ImageDraw, f: _Frame, looks: _Looks) -> None:
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


def _render_photo(
    looks: _Looks, photo: str, size: tuple[int, int], grain: Image.Image, rng: np.random.Generator
) -> Image.Image:
    """One photo: the person's look, with this shot's pose, lighting and sensor noise."""
    w, h = size
    cx, cy, rx, ry = looks.face
    scale = rng.uniform(0.96, 1.04)
    frame = _Frame(
        (cx + rng.normal(0, 0.015)) * w,
        (cy + rng.normal(0, 0.015)) * h,
        rx * scale * w,
        ry * scale * h,
    )
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    _draw_backdrop(d, looks, w, h)
    _draw_head(d, frame, looks)
    _draw_age_marks(d, frame, looks)
    _draw_features(d, frame, looks)
    _draw_mask(d, frame, looks, photo)
    _draw_front(d, frame, looks)
    return _expose(img, grain, rng)


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


def _save(img: Image.Image, path: Path) -> None:
    if path.suffix == ".png":
        img.save(path, format="PNG", compress_level=1)  # 3x faster than the default
    else:
        img.save(path, format="JPEG", quality=JPEG_QUALITY)


def _photos_of(person: Person, seed: int, size: tuple[int, int]) -> list[tuple[str, Image.Image]]:
    """The seven photos of a person, from the person's own RNG (seed, index)."""
    rng = np.random.default_rng([seed, person.index])
    looks = _draw_looks(person, rng)
    grain = _draw_grain(size, rng)
    return [(photo, _render_photo(looks, photo, size, grain, rng)) for photo in PHOTO_MASK]


# ---------------------------------------------------------------- writing the archive


def _eval_image_id(seed: int, person: Person, photo: str) -> str:
    return hashlib.sha1(f"synthetic:{seed}:{person.index}:{photo}".encode()).hexdigest() + ".jpg"


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_train(out: Path, plan: _Plan, seed: int, size: tuple[int, int]) -> None:
    images = out / "train" / "images"
    junk = set(plan.junk_folders)
    for i, person in enumerate(plan.train):
        folder = images / person.path
        folder.mkdir(parents=True, exist_ok=True)
        for (photo, img), ext in zip(
            _photos_of(person, seed, size), plan.extensions[i], strict=True
        ):
            _save(img, folder / f"{photo}{ext}")
            if i in junk:
                (folder / f"._{photo}{ext}").write_bytes(APPLEDOUBLE)
        if i in junk:
            (images / f"._{person.path}").write_bytes(APPLEDOUBLE)
    rows = [(p.id, p.gender, RACE, p.age, p.path) for p in plan.train]
    rows.sort(key=lambda r: (r[0], r[4]))  # the real csv is in id order
    _write_csv(out / "train" / "train.csv", ("id", "gender", "race", "age", "path"), rows)


def _write_eval(out: Path, plan: _Plan, seed: int, size: tuple[int, int], quirks: bool) -> None:
    images = out / "eval" / "images"
    images.mkdir(parents=True, exist_ok=True)
    truth = []
    for person in plan.eval:
        for photo, img in _photos_of(person, seed, size):
            image_id = _eval_image_id(seed, person, photo)
            _save(img, images / image_id)
            truth.append((image_id, label_of(person, photo)))
    truth = [truth[i] for i in plan.eval_order]
    if quirks and truth:
        (images / f"._{truth[0][0]}").write_bytes(APPLEDOUBLE)
    _write_csv(out / "eval" / "info.csv", ("ImageID", "ans"), [(t[0], 0) for t in truth])
    _write_csv(out / "eval_truth.csv", ("ImageID", "ans"), truth)


def generate_archive(
    out: Path,
    people: int = 200,
    eval_people: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (384, 512),
    quirks: bool = True,
) -> Path:
    """Write a synthetic archive into ``out`` (which must be empty or absent) and return ``out``.

    ``size`` is (width, height). The same arguments give the same bytes. With ``quirks`` the
    archive has the real one's AppleDouble files, mixed extensions, suffixed ids and one id
    shared by two folders; without, every file is a plain ``.jpg`` under a unique plain id.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty; the synthetic archive needs a fresh folder")
    if people < 0 or eval_people < 0 or min(size) < 8:
        raise ValueError(f"need people, eval_people >= 0 and a size of at least 8x8, got {size}")
    size = (int(size[0]), int(size[1]))
    plan = _plan_archive(people, eval_people, seed, quirks)
    _write_train(out, plan, seed, size)
    _write_eval(out, plan, seed, size, quirks)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to create (empty/absent)")
    parser.add_argument("--people", type=int, default=200, help="people in train/")
    parser.add_argument("--eval-people", type=int, default=40, help="further people in eval/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("W", "H"))
    parser.add_argument("--no-quirks", action="store_true", help="plain ids, .jpg only, no junk")
    args = parser.parse_args(argv)
    out = generate_archive(
        args.out, args.people, args.eval_people, args.seed, tuple(args.size), not args.no_quirks
    )
    (w, h), photos = args.size, len(PHOTO_MASK)
    print(
        f"wrote synthetic archive to {out}: {args.people} people / {photos * args.people} photos "
        f"in train/, {args.eval_people} people / {photos * args.eval_people} photos in eval/ "
        f"({w}x{h}, seed {args.seed})"
    )


if __name__ == "__main__":
    main()
