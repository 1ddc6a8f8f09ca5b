#!/usr/bin/env bash
# The GPU check of issues #5 and #18 on a fresh GPU machine, from any directory, in under
# 8 minutes (BUDGET seconds, 470 by default, installation included):
#   bash scripts/gpu_check.sh                  # a machine that reaches PyPI: creates .venv
#   WHEELS=.whl bash scripts/gpu_check.sh      # an offline node whose python3 (3.12) has torch,
#                                              # Lightning and timm: the rest from wheels in .whl/,
#                                              # filled first, here: bash scripts/gpu_wheels.sh
# The steps, most wanted first, with the seconds each is expected to take on one H200 with
# 16 CPUs. Each runs under `timeout` (its cap, or what is left of the budget); one that fails or
# runs out is logged and the next one runs; one that cannot start in the time left is skipped.
# Results: outputs/gpu_check/ (a JSON and a log per step, `.md` tables of the benchmarks,
# summary.txt), packed into "$OUT/gpu_check.tgz" when OUT is set, also after a failure.
#   1. install                                                           ~20 s (wheels), ~180 s (PyPI)
#   2. the benchmark's synthetic archive (2,800 photos of 384×512)        ~15 s
#   3. resnet50 ladder, eager: batch 32, 64, 128, 256                     ~85 s
#   4. resnet50 batch 32: every figure of the single run and --breakdown ~60 s
#   5. resnet50 ladder, compile=reduce-overhead: 32, 256, then 64, 128   ~150 s (compiles)
#   6. efficientnet_b0 batch 256, eager                                  ~25 s
#   7. the host-sync test on the GPU (tests/test_host_syncs.py)          ~30 s
#   8. 1 epoch of train, predict from its checkpoint, 1 epoch of DDP      ~80 s
# All at 224×224, trainer=gpu (bf16 mixed), channels_last, data.cache=memory warmed by one
# epoch, workers = CPUs, PHOTOS photos and EPOCHS measured epochs, REPEATS rounds (the best).
set -uo pipefail  # not -e: a failing step is reported, and the others still run
cd "$(dirname "$0")/.." || exit 1

START=$SECONDS
BUDGET=${BUDGET:-470}  # seconds for everything, under 8 minutes
PHOTOS=${PHOTOS:-2048} # the archive's training split holds ~2240
EPOCHS=${EPOCHS:-2}    # measured passes over the photos, after one warm-up pass
REPEATS=${REPEATS:-1}  # rounds of each figure, the best kept (3 for the issue's targets: ~2.5x)
WORKERS=$(nproc)
RESULTS=outputs/gpu_check
PY=.venv/bin/python
FAILURES=0
mkdir -p "$RESULTS"
: > "$RESULTS/summary.txt"

say() { echo "$*" | tee -a "$RESULTS/summary.txt"; }
# shellcheck disable=SC2317  # called by the EXIT trap
copy_out() { # whatever exists, also after a failure
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    local out
    out=$(cd "$OUT" && pwd)
    (cd "$RESULTS" && shopt -s nullglob && tar czf "$out/gpu_check.tgz" ./*.json ./*.log ./*.md \
      ./*.txt ./*.csv) || true
  fi
}
trap copy_out EXIT

step() { # NAME CAP_SECONDS COMMAND…: the command under timeout, its output in NAME.log
  local name=$1 cap=$2 left
  shift 2
  left=$((BUDGET - (SECONDS - START) - 5)) # 5 s kept to pack the results
  if ((left < 20)); then
    FAILURES=$((FAILURES + 1))
    say "SKIPPED $name: ${left}s of the budget left"
    return 1
  fi
  ((cap > left)) && cap=$left
  local begun=$SECONDS
  timeout --kill-after=10 "$cap" "$@" > "$RESULTS/$name.log" 2>&1
  local rc=$?
  if ((rc == 0)); then
    say "ok      $name: $((SECONDS - begun)) s"
  else
    FAILURES=$((FAILURES + 1))
    say "FAILED  $name: exit $rc after $((SECONDS - begun)) s (124: out of time); log's end:"
    tail -n 15 "$RESULTS/$name.log" | tee -a "$RESULTS/summary.txt"
  fi
  return $rc
}

# 1. install (~20 s from wheels; ~180 s creating .venv from PyPI)
if [ -n "${WHEELS:-}" ]; then # an offline GPU node: its own python3 with torch, ours as wheels
  PY=python3
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  test -x "$PY" || python3.11 -m venv .venv
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -e '.[dev]'
fi
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"
print(torch.__version__, torch.cuda.get_device_name())' | tee -a "$RESULTS/summary.txt" || exit 1
say "installed after $((SECONDS - START)) s"

# 2. the archive (~15 s)
ARCHIVE=$("$PY" -c 'from mask_age_gender.bench.build import bench_archive; print(bench_archive())') \
  || exit 1
say "archive $ARCHIVE after $((SECONDS - START)) s"

MODEL=(model.pretrained=false model.channels_last=true) # no hub here
DATA=(data.cache=memory "data.num_workers=$WORKERS")
sets=()
for override in trainer=gpu "${MODEL[@]}" "${DATA[@]}"; do sets+=(--set "$override"); done
bench() { # NAME CAP_SECONDS [bench options…]: python -m mask_age_gender.bench into NAME.json
  local name=$1 cap=$2
  shift 2
  step "$name" "$cap" "$PY" -m mask_age_gender.bench --image-size 224 224 --photos "$PHOTOS" \
    --workers "$WORKERS" --warm-epochs 1 --epochs "$EPOCHS" --repeats "$REPEATS" \
    --archive "$ARCHIVE" "${sets[@]}" "$@" --out "$RESULTS/$name.json"
}

# 3. ~85 s: 4 rows of a fresh training process (~12 s) and model only (~5 s); 4. ~60 s: the
# single run's phases (data, model, plain loop, training, predict) and the step in parts
bench ladder_eager 150 --model resnet50 --batch-size 32,64,128,256 --compile none --ladder
bench bench 120 --model resnet50 --batch-size 32 --breakdown
# 5. ~150 s: torch.compile of resnet50 twice a row (model only here, training in its own
# process, which finds the first's kernels in Inductor's cache); the issue's two batch sizes
# first, so that a cut-short run still has them (the JSON is written after every row)
bench ladder_compiled 150 --model resnet50 --batch-size 32,256,64,128 --compile reduce-overhead \
  --ladder
# 6. ~25 s
bench efficientnet_b0 60 --model efficientnet_b0 --batch-size 256 --compile none --ladder
# 7. ~30 s: synchronising calls are errors during the training steps of a tiny GPU run
step host_syncs 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_host_syncs.py -k gpu
# 8. ~80 s: the commands themselves on the GPU
step train 60 "$PY" -m mask_age_gender.train trainer=gpu model=resnet50 "${MODEL[@]}" "${DATA[@]}" \
  "data.root=$ARCHIVE" data.batch_size=32 trainer.max_epochs=1 callbacks.progress_bar=null \
  "hydra.run.dir=$RESULTS/train" \
  && cp "$RESULTS/train/summary.json" "$RESULTS/train_summary.json" \
  && step predict 40 "$PY" -m mask_age_gender.predict \
    "ckpt=$RESULTS/train/checkpoints/best.ckpt" "data.root=$ARCHIVE" \
    "output=$RESULTS/predict_submission.csv"
step ddp 60 "$PY" -m mask_age_gender.train trainer=ddp trainer.devices=1 model=resnet50 \
  "${MODEL[@]}" "${DATA[@]}" "data.root=$ARCHIVE" data.batch_size=32 trainer.max_epochs=1 \
  callbacks.progress_bar=null "hydra.run.dir=$RESULTS/ddp" \
  && cp "$RESULTS/ddp/summary.json" "$RESULTS/ddp_summary.json"

say "all steps after $((SECONDS - START)) s of a ${BUDGET} s budget"
"$PY" - "$RESULTS" <<'PYTHON' | tee -a "$RESULTS/summary.txt"
import json
import sys
from pathlib import Path

results = Path(sys.argv[1])


def load(name):
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


for name in ("ladder_eager", "ladder_compiled", "efficientnet_b0"):
    if (ladder := load(name)) is not None:
        print(f"\n{name} ({'complete' if ladder.get('complete') else 'cut short'}):")
        print(ladder["table"])
if (bench := load("bench")) is not None:
    train, model = bench["train_img_s"], bench["model_only_img_s"]
    print(f"\nbatch 32: train_img_s {train:.1f}  model_only_img_s {model:.1f}  "
          f"train/model_only {train / model:.3f} (target >= 0.9)  data_only_img_s "
          f"{bench['data_only_img_s']:.1f}  plain_loop_img_s {bench['plain_loop_img_s']:.1f}  "
          f"predict_img_s {bench['predict_img_s']:.1f}  peak GPU {bench['train_peak_gpu_mb']} MiB")
    if "breakdown" in bench:
        print(f"\none step, batch 32 ({bench['breakdown']['note']}):")
        print(bench["breakdown"]["table"])
if (summary := load("train_summary")) is not None:
    print(f"\n1 epoch of mask_age_gender.train: {summary.get('fit_images_per_s')} img/s over "
          f"the fit (validation included), {summary['seconds']} s, status {summary['status']}")
if (submission := results / "predict_submission.csv").is_file():
    print(f"predict: {len(submission.read_text().splitlines()) - 1} rows")
if (ddp := load("ddp_summary")) is not None:
    print(f"DDP (NCCL, 1 GPU) 1 epoch: val_f1 {ddp['val_f1']}, status {ddp['status']}")
PYTHON
exit $((FAILURES > 0))
