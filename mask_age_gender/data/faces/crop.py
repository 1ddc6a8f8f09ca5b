"""The face crop (``transform=face_crop``): each photo cut to its face, as the winners did.

One way in: a ``prepare`` step, :class:`FaceCrop`, that reads the photo's face box from the
``face_box`` keyword of the albumentations call (``Pipeline.prepare_image(image, box)``), the
way albumentations' own ``RandomCropNearBBox`` reads its box. A photo's box is an
``(x1, y1, x2, y2)`` row in its own pixels, or NaNs where no face was found; a
:class:`~mask_age_gender.data.dataset.FaceDataset` holds the rows of its photos in its order
(``resolve.py`` lines them up from a boxes file). Being a ``prepare`` step, the crop is
inside the photo cache and the ``train_stats`` statistics, and every stage and ``predict`` do
the same, from the same checkpoint config.

The window (:func:`crop_window`): the box grown on every side by ``margin`` times its larger
side, widened (or heightened) about its centre to the aspect ratio of ``aspect``
(``data.image_size``, H×W) so the resize after it does not stretch the face, then clipped to
the photo. Where no face was found, the step is the centre crop of ``transform=center_crop``
(``height`` × ``width``, padded when the photo is smaller): it subclasses that very step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

import albumentations as A
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema
from pydantic import Field

BOX_KEY = "face_box"  # the keyword that carries a photo's box into the albumentations call


def crop_window(
    box: Sequence[float], margin: float, aspect: Sequence[float], shape: Sequence[int]
) -> tuple[int, int, int, int] | None:
    """``(x_min, y_min, x_max, y_max)`` in whole pixels of a photo of ``shape`` (H, W, …): the
    face ``box`` grown by ``margin`` × its larger side on each side, widened about its centre to
    the ratio of ``aspect`` (H, W), outer pixels included (floor, ceil), clipped to the photo.
    None where the box is NaN (no face) or the window leaves nothing of the photo."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if any(math.isnan(v) for v in (x1, y1, x2, y2)):
        return None
    grow = margin * max(x2 - x1, y2 - y1)
    x1, y1, x2, y2 = x1 - grow, y1 - grow, x2 + grow, y2 + grow
    ratio = aspect[1] / aspect[0]  # width over height
    if x2 - x1 < (y2 - y1) * ratio:
        extra = ((y2 - y1) * ratio - (x2 - x1)) / 2
        x1, x2 = x1 - extra, x2 + extra
    else:
        extra = ((x2 - x1) / ratio - (y2 - y1)) / 2
        y1, y2 = y1 - extra, y2 + extra
    height, width = shape[:2]
    window = (
        max(0, math.floor(x1)),
        max(0, math.floor(y1)),
        min(width, math.ceil(x2)),
        min(height, math.ceil(y2)),
    )
    return window if window[2] > window[0] and window[3] > window[1] else None


class FaceCrop(A.CenterCrop):
    """The photo cut to its face (:func:`crop_window`); with no face (NaN box), the
    ``height`` × ``width`` centre crop it inherits. The box comes as the ``face_box`` keyword;
    albumentations refuses a call without it, so a photo is never silently left uncropped."""

    class InitSchema(BaseTransformInitSchema):  # the arguments below, checked by albumentations
        margin: float = Field(ge=0)
        aspect: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
        height: int = Field(ge=1)
        width: int = Field(ge=1)
        pad_if_needed: bool

    def __init__(
        self,
        margin: float = 0.25,
        aspect: Sequence[float] = (224, 224),
        height: int = 350,
        width: int = 250,
        pad_if_needed: bool = True,
        p: float = 1.0,
    ):
        super().__init__(height=height, width=width, pad_if_needed=pad_if_needed, p=p)
        self.margin = float(margin)
        self.aspect = (float(aspect[0]), float(aspect[1]))

    @property
    def targets_as_params(self) -> list[str]:
        return [BOX_KEY]

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        window = crop_window(data[BOX_KEY], self.margin, self.aspect, params["shape"])
        if window is None:
            return super().get_params_dependent_on_data(params, data)
        return {"crop_coords": window, "pad_params": None}


def photo_tags(boxes: np.ndarray) -> list[str]:
    """Per photo, the text its cached pixels depend on besides path and settings: its box."""
    return [",".join(f"{v:.2f}" for v in row) for row in boxes]
