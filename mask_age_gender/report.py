"""``python -m mask_age_gender.report DIR... [--sort COL [--desc]] [--diff] [--out DIR]``: the
experiment ledger of every run found under the folders (``results/ledger.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mask_age_gender.results.ledger import collect_ledger, formatted, sort_ledger, write_ledger


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mask_age_gender.report",
        description="Experiment ledger: one row per run found under the folders.",
    )
    parser.add_argument("folders", nargs="+", type=Path, help="run or sweep folders")
    parser.add_argument("--sort", help="column to sort by (default: val_f1, best first)")
    parser.add_argument("--desc", action="store_true", help="sort --sort COL high to low")
    parser.add_argument("--diff", action="store_true", help="only the config keys that vary")
    parser.add_argument("--out", type=Path, help="where ledger.md/.csv go (default: 1st folder)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    ledger = collect_ledger(args.folders, diff=args.diff)
    if ledger.empty:
        print(f"no runs under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 1
    try:
        if args.sort:
            ledger = sort_ledger(ledger, args.sort, args.desc)
        else:
            ledger = sort_ledger(ledger, "val_f1", descending=True)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 2
    print(formatted(ledger).to_string(index=False))
    for path in write_ledger(ledger, args.out or args.folders[0]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
