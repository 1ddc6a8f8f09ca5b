#!/usr/bin/env bash
# One technique at a time on the demo recipe (same archive, epochs and seed), then the ledger.
#   bash bench/compare_recipes.sh [EPOCHS] [OUT]
set -euo pipefail
epochs=${1:-4}
out=${2:-multirun/compare}
common=("trainer.max_epochs=$epochs" seed=42 callbacks.progress_bar=null)
run() {  # name, overrides…
  local name=$1; shift
  [ -f "$out/$name/summary.json" ] && return
  .venv/bin/python -m mask_age_gender.train "${common[@]}" "$@" "hydra.run.dir=$out/$name"
}
run demo_ce experiment=demo
run focal experiment=demo loss=focal
run f1 experiment=demo loss=f1
run weighted_ce experiment=demo loss=weighted_ce
run sampler_weighted experiment=demo data.sampler=weighted
run head_multi experiment=demo head=multi
run cutmix experiment=demo mix=cutmix
# strong on the demo's data, size and trainer (its own model, loss, transform, mix, sampler, EMA)
run strong experiment=strong data.root=data/synthetic "data.image_size=[112,84]" trainer=cpu
