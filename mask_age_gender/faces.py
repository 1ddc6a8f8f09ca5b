"""``python -m mask_age_gender.faces``: the face box of every photo of an archive.

    python -m mask_age_gender.faces data.root=DIR [out=FILE] [workers=N]

Writes ``path, x1, y1, x2, y2, score, found`` (``data/faces/boxes.py``) to ``out``, by default
``face_boxes.csv`` in ``data.cache_dir``; a second run detects only new or changed photos
(``data/faces/detect.py``).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mask_age_gender.data.faces.boxes import default_boxes_path
from mask_age_gender.data.faces.detect import detect_archive
from mask_age_gender.errors import mistakes_as_messages
from mask_age_gender.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="../conf", config_name="faces")
def main(cfg: DictConfig) -> None:
    with mistakes_as_messages():  # a user mistake: its message, exit 1, no traceback
        detect_archive(
            cfg.data.root,
            cfg.out or default_boxes_path(cfg.data.cache_dir),
            cfg.workers,
            verify_images=cfg.data.verify_images,
            min_score=cfg.min_score,
            max_side=cfg.max_side,
        )


if __name__ == "__main__":
    register_resolvers()  # before Hydra composes: the configs use them
    main()
