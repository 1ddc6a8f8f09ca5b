"""``python -m mask_age_gender.labels_audit``: people whose labels the models dispute, from
out-of-fold predictions, as label overrides (``results/label_audit.py``).

    python -m mask_age_gender.predict ckpt_dir=KFOLD_SWEEP split=oof        # writes oof.csv
    python -m mask_age_gender.labels_audit oof.csv --out suspects.csv
    python -m mask_age_gender.train data.label_overrides=suspects.csv …     # after a look

Which people are suspects: ``results/label_audit.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mask_age_gender.files import write_csv_atomic
from mask_age_gender.labels import DEFAULT_AGE_BINS
from mask_age_gender.results.label_audit import audit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="+", type=Path, help="oof.csv or val_predictions.csv")
    parser.add_argument("--out", type=Path, default=Path("label_suspects.csv"))
    parser.add_argument("--share", type=float, default=0.5, help="photos disputing, above")
    parser.add_argument("--age-bins", type=int, nargs=2, default=list(DEFAULT_AGE_BINS))
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.predictions if not p.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")
    predictions = pd.concat([pd.read_csv(p) for p in args.predictions], ignore_index=True)
    suspects = audit(predictions, args.age_bins, args.share)
    write_csv_atomic(args.out, suspects)
    people = predictions["person"].nunique()
    print(suspects.to_string(index=False) if len(suspects) else "no suspects")
    print(f"{len(suspects)} of {people} people suspect; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
