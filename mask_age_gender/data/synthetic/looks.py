"""How a person looks: drawn once from the person's own RNG and reused on all seven photos.

Gender shows in hair and lips, age in grey hair, wrinkles, spots and a receding hairline; each
age cue grows smoothly with the age, so 29/30 and 59/60 look alike, and a few people are drawn
against their gender label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import Person

Color = tuple[int, int, int]

AGAINST_GENDER_SHARE = 0.02  # drawn with the other gender's look: label noise
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
class Looks:
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


def mix(a: Color, b: Color, t: float) -> Color:
    """The colour a fraction ``t`` of the way from ``a`` to ``b``."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def shade(c: Color, k: float) -> Color:
    """``c`` darkened (k < 1) or lightened (k > 1), clipped to 0..255."""
    return tuple(int(min(255, max(0, round(x * k)))) for x in c)  # type: ignore[return-value]


def _jitter(rng: np.random.Generator, c: Color, amount: int) -> Color:
    return tuple(
        int(x) for x in np.clip(np.array(c) + rng.integers(-amount, amount + 1, 3), 0, 255)
    )  # type: ignore[return-value]


def _room_colour(rng: np.random.Generator) -> Color:
    """A wall or door colour: some grey, tinted a little towards any hue."""
    return mix(_jitter(rng, (140, 135, 130), 70), _jitter(rng, (128, 128, 128), 127), 0.35)


def _ramp(x: float, start: float, span: float) -> float:
    return float(min(1.0, max(0.0, (x - start) / span)))


def draw_looks(person: Person, rng: np.random.Generator) -> Looks:
    """The person's looks; the draws come in a fixed order, so a seed gives the same person."""
    female_look = (person.gender == "female") != (rng.random() < AGAINST_GENDER_SHARE)
    # One offset moves all wrinkle cues, another the greying: some people look older than they are.
    wrinkle_age = person.age + rng.normal(0, 4)
    grey_age = person.age + rng.normal(0, 5)
    grey = _ramp(grey_age, 38, 30)
    base_hair = _jitter(rng, HAIR_PALETTE[rng.integers(len(HAIR_PALETTE))], 8)
    hair = mix(base_hair, GREY_HAIR, grey)
    skin = _jitter(rng, mix((238, 206, 180), (186, 142, 108), rng.random()), 6)
    if female_look:
        hair_length = rng.uniform(0.3, 1.0)
        hairline = rng.uniform(0.42, 0.72)
        red = (rng.integers(175, 215), rng.integers(55, 95), rng.integers(75, 110))
        lips = red if rng.random() < 0.8 else mix(skin, (170, 90, 90), 0.5)
    else:
        hair_length = rng.uniform(0.0, 0.25)
        receding = rng.random() * (rng.random() < 0.5)  # half the men keep their hairline
        hairline = rng.uniform(0.38, 0.52) * (1 - 0.7 * receding * _ramp(wrinkle_age, 40, 30))
        lips = mix(skin, (160, 90, 85), rng.uniform(0.3, 0.5))
    x0, y0 = rng.uniform(0.0, 0.7), rng.uniform(0.0, 0.5)
    return Looks(
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
        brows=mix(base_hair, GREY_HAIR, 0.6 * grey),
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
