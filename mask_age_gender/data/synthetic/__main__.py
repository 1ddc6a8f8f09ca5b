"""The command line: ``python -m mask_age_gender.data.synthetic --out DIR ...``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mask_age_gender.labels import PHOTO_MASK

from . import __doc__ as package_doc
from .writer import generate_archive


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, write the archive and say what was written."""
    about = package_doc.splitlines()[0] if package_doc else None  # None under python -OO
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=about)
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
