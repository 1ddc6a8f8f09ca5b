"""``python -m mask_age_gender.predict``: predictions from a checkpoint or an ensemble.

    python -m mask_age_gender.predict ckpt=PATH data.root=DIR output=FILE [tta=hflip]
    python -m mask_age_gender.predict 'ckpt=[A,B,C]' ensemble=hard ...   # or ckpt_dir=SWEEP
    python -m mask_age_gender.predict ckpt_dir=SWEEP split=val   # score before submitting
    python -m mask_age_gender.predict ckpt_dir=KFOLD split=oof   # out-of-fold over all people

What each split writes: ``inference/prediction.py``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mask_age_gender.errors import mistakes_as_messages
from mask_age_gender.inference.prediction import predict_archive
from mask_age_gender.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with mistakes_as_messages():  # a user mistake: its message, exit 1, no traceback
        predict_archive(cfg)


if __name__ == "__main__":
    register_resolvers()  # before Hydra composes: the configs use them
    main()
