#!/usr/bin/env bash
# The core package alone (`pip install -e .`, no extras, no lock) in a fresh virtual environment:
# a one-epoch tiny training, a prediction and a report with it, so a missing core declaration
# fails here (.ci/run runs it before `make test`). Prints what it installed, its size and time.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
started=$(date +%s)

$PYTHON -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
$PY -m pip install --quiet --upgrade pip
$PY -m pip install --quiet -e .
installed=$(date +%s)
echo "core install: $($PY -m pip list --format=freeze | grep -vc '^mask')" \
    "distributions, $(du -sh "$WORK/venv" | cut -f1), $((installed - started)) s"
$PY -m pip list --format=freeze | grep -v '^mask' | paste -sd' '

cd "$WORK"  # not the checkout: its folders on sys.path would hide nothing, but keep it clean
$PY -m mask_age_gender.data.synthetic --out archive --people 30 --eval-people 3 --seed 0 \
    --size 48 64 >/dev/null
tiny=(
    "hydra.searchpath=[file://$OLDPWD/tests/conf]" model=test_resnet trainer=cpu
    trainer.max_epochs=1 data.image_size=[64,48] data.batch_size=16 data.num_workers=0
    data.root="$WORK/archive" paths.cache_dir="$WORK/cache" callbacks.progress_bar=null
)
$PY -m mask_age_gender.train "${tiny[@]}" hydra.run.dir="$WORK/run" > train.log 2>&1 \
    || { tail -40 train.log; exit 1; }
$PY -m mask_age_gender.predict ckpt="$WORK/run/checkpoints/best.ckpt" data.root="$WORK/archive" \
    output="$WORK/submission.csv" num_workers=0 > predict.log 2>&1 || { tail -40 predict.log; exit 1; }
$PY -m mask_age_gender.report "$WORK/run" > report.log 2>&1 || { tail -40 report.log; exit 1; }
rows=$(($(wc -l < submission.csv) - 1))
test "$rows" -eq 21 || { echo "submission has $rows rows, expected 21"; exit 1; }
grep -q '"status": "finished"' run/summary.json
echo "core alone: trained, predicted $rows eval photos, reported; $(($(date +%s) - started)) s in all"
