"""Synthetic copy of the competition archive: the real layout, the real quirks, drawn faces.

``generate_archive`` writes ``train/train.csv`` + ``train/images/<profile>/<photo>``,
``eval/info.csv`` + ``eval/images/<hashed id>.jpg`` and, outside ``eval/``, ``eval_truth.csv``
with the true 18-class labels and each photo's person, so the whole pipeline runs (and the
grouping of eval photos into people is measured) without the real data.

Each photo is a face drawn with PIL. Mask state, gender (hair, lips) and age (grey hair,
wrinkles, age spots, receding hair) are visible but imperfect: age cues grow smoothly with the
integer age, so 29/30 and 59/60 look alike, and 2 % of people are drawn against their gender
label. Background, skin, face shape, mask colour, glasses and moles are drawn once per person,
so an image-level train/val split leaks the face exactly like the real data does.

    python -m mask_age_gender.data.synthetic --out DIR --people 200 --eval-people 40 --seed 0

Demo data, not pipeline: only the tests and ``mask_age_gender.bench`` import it (an
import-linter contract in pyproject.toml keeps it so). The modules, in the order they run:
``plan`` (who is in the archive), ``looks`` (how each person looks), ``frame`` (where the
face sits in a shot), ``drawing`` (the photos), ``writer`` (the files), ``__main__`` (the CLI).
"""

from .writer import APPLEDOUBLE, generate_archive

__all__ = ["APPLEDOUBLE", "generate_archive"]
