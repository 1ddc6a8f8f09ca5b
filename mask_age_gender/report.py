"""``python -m mask_age_gender.report DIR... [--sort COL [--desc]] [--diff] [--out DIR]``: the
experiment ledger of every run found under the folders (``results/ledger.py``);
``--group [--baseline K=V[,K=V]]``: one row per configuration, its seeds and folds summarised
(``results/groups.py``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mask_age_gender.files import write_csv_atomic, write_text_atomic
from mask_age_gender.results.groups import BaselineError, formatted_groups, group_runs
from mask_age_gender.results.ledger import MISSING, collect_ledger, formatted, sort_ledger


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
    parser.add_argument(
        "--group",
        action="store_true",
        help="one row per configuration (runs differing only in seed/data.fold): n, mean, std,"
        " 95%% t-interval; writes ledger_groups.md/.csv",
    )
    parser.add_argument(
        "--baseline",
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="with --group: the reference configuration; the others get paired val F1 deltas",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline and not args.group:
        print("--baseline needs --group", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    ledger = collect_ledger(args.folders, diff=args.diff)
    if ledger.empty:
        print(f"no runs under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 1
    if args.group:
        return report_groups(ledger, args)
    try:
        ledger = sort_ledger(ledger, args.sort or "val_f1", args.desc or not args.sort)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 2
    write_tables(args, "ledger", ledger, formatted(ledger))
    return 0


def report_groups(ledger: pd.DataFrame, args: argparse.Namespace) -> int:
    """``--group``: print and write the configurations' table; exit 2 for a bad baseline."""
    try:
        groups = group_runs(ledger, args.baseline)
    except BaselineError as err:
        print(err, file=sys.stderr)
        return 2
    write_tables(args, "ledger_groups", groups, formatted_groups(groups), disable_numparse=True)
    return 0


def write_tables(
    args: argparse.Namespace, name: str, table: pd.DataFrame, shown: pd.DataFrame, **markdown
) -> None:
    """Print ``shown``; write ``NAME.csv`` (``table``: every column, raw values) and ``NAME.md``
    (``shown``, as printed) into ``--out`` (default: the first folder)."""
    print(shown.to_string(index=False))
    out = args.out or args.folders[0]
    text = shown.to_markdown(index=False, missingval=MISSING, **markdown) + "\n"
    print(f"wrote {write_csv_atomic(out / f'{name}.csv', table)}")
    print(f"wrote {write_text_atomic(out / f'{name}.md', text)}")


if __name__ == "__main__":
    sys.exit(main())
