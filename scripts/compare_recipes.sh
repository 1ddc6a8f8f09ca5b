#!/usr/bin/env bash
# One technique at a time on the demo recipe, each over the same seeds (the validation people
# stay the same: data.split_seed), then the grouped ledger with paired differences to the demo.
#   bash scripts/compare_recipes.sh [EPOCHS] [OUT] [SEEDS]      # defaults: 3 multirun/compare 1,2,3
set -euo pipefail
epochs=${1:-3}
out=${2:-multirun/compare}
seeds=${3:-1,2,3}
common=("trainer.max_epochs=$epochs" "seed=$seeds" callbacks.progress_bar=null)
sweep() {  # name, overrides…: one configuration over the seeds; skipped once it has finished
  local name=$1; shift
  [ -f "$out/$name/.done" ] && return
  .venv/bin/python -m mask_age_gender.train -m "${common[@]}" "task_name=$name" "$@" \
    "hydra.sweep.dir=$out/$name"
  touch "$out/$name/.done"
}
sweep demo experiment=demo
sweep focal experiment=demo loss=focal
sweep f1 experiment=demo loss=f1
sweep weighted_ce experiment=demo loss=weighted_ce
sweep sampler_weighted experiment=demo data.sampler=weighted
sweep head_multi experiment=demo head=multi
sweep cutmix experiment=demo mix=cutmix
# strong on the demo's data, size and trainer (its own model, loss, transform, mix, sampler, EMA)
sweep strong experiment=strong data.root=data/synthetic "data.image_size=[112,84]" trainer=cpu
.venv/bin/python -m mask_age_gender.report "$out" --group --baseline task_name=demo
