#!/usr/bin/env bash
# .whl/: the wheels an offline GPU machine lacks for scripts/gpu_check.sh, by the standard
# wheelhouse recipe (docs/clusters.md) narrowed to what that machine's image does not hold
# (scripts/gpu_present.txt), so that they travel in the working tree (64 MiB):
#   bash scripts/gpu_wheels.sh && WHEELS=.whl bash scripts/gpu_check.sh   # the latter there
# 1. uv resolves the core dependencies and the test runner for CPython 3.12 on manylinux x86-64,
#    the machine's known versions pinned; 2. what the machine has is dropped; 3. pip downloads
#    the rest as wheels for that platform, and builds pure-Python wheels of sdist-only releases.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${WHEELS:-.whl}
PRESENT=scripts/gpu_present.txt
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

grep -v '^#' "$PRESENT" | grep '==' > "$WORK/pins.txt"
printf 'pytest\npytest-xdist\n' > "$WORK/tests.in"  # the host-sync test runs there
.venv/bin/uv pip compile pyproject.toml "$WORK/tests.in" --python-version 3.12 \
    --python-platform x86_64-manylinux_2_28 --constraint "$WORK/pins.txt" --no-header \
    --no-annotate --quiet -o "$WORK/all.txt"
names=$(grep -v '^#' "$PRESENT" | sed 's/==.*//' | paste -sd'|')
grep -viE "^($names)==" "$WORK/all.txt" > "$WORK/missing.txt" || true
rm -rf "$DEST" && mkdir -p "$DEST"
while read -r requirement; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$DEST" "$requirement" 2>/dev/null \
    || python3 -m pip wheel --quiet --no-deps --no-binary=:all: -w "$DEST" "$requirement"
done < "$WORK/missing.txt"
ls -1 "$DEST"
echo "$(ls "$DEST" | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
