"""A photo file decoded to an H×W×3 uint8 RGB array, whatever its format and mode."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

JPEG_SUFFIXES = (".jpg", ".jpeg")


def read_jpeg_opencv(path: str) -> np.ndarray | None:
    """OpenCV's H×W×3 RGB decode of a JPEG, EXIF orientation ignored as PIL does; None if it
    cannot read the file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_pil(path: str) -> np.ndarray:
    """PIL's H×W×3 RGB decode of any photo, converting L, RGBA, P, CMYK… to RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_rgb(path: str) -> np.ndarray:
    """H×W×3 uint8 RGB array of a photo, converting L, RGBA, P, CMYK… to RGB.

    JPEGs decode with OpenCV: on 384×512 photos 1.05–1.25× PIL's speed with the same pixels
    (``python -m mask_age_gender.bench`` compares PIL, OpenCV and torchvision). Other files,
    and any OpenCV cannot read, go through PIL, which also names what is wrong.
    """
    if path.lower().endswith(JPEG_SUFFIXES):
        image = read_jpeg_opencv(path)
        if image is not None:
            return image
    try:
        return read_pil(path)
    except Exception as err:  # name the photo: a bare worker traceback does not
        raise OSError(f"photo {path} cannot be decoded: {err}") from err
