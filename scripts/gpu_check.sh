#!/usr/bin/env bash
# The GPU check of issue #5, on a fresh GPU machine, from any directory:
#   bash scripts/gpu_check.sh             # BATCH=32 PHOTOS=2048 EPOCHS=3 COMPILE=false by default
# Installs the project (.venv, pip install -e '.[dev]'), generates the benchmark's synthetic
# archive (384×512), benchmarks resnet50 at 224×224 (trainer=gpu: bf16 mixed; channels_last;
# data.cache=memory warmed by one epoch; workers = CPU count), then trains it 1 epoch with
# `python -m mask_age_gender.train trainer=gpu …`. Prints train_img_s, model_only_img_s and
# their ratio (target >= 0.8), what trainer.deterministic=true costs (issue #6), and what
# data.normalize_on=device (uint8 batches, normalised on the GPU) gains over =loader; predicts
# from the trained checkpoint and trains 1 epoch of trainer=ddp (NCCL) on one GPU. Results in
# outputs/gpu_check/, packed into "$OUT/gpu_check.tgz" when OUT is set.
# An offline node whose python3 already has torch, Lightning and timm: WHEELS=DIR installs the
# rest from wheels in DIR (hydra-core, omegaconf, antlr4, albumentations and their needs).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
BATCH=${BATCH:-32}
PHOTOS=${PHOTOS:-2048}  # the archive's training split holds ~2240
EPOCHS=${EPOCHS:-3}     # measured passes over the photos, after one warm-up pass
COMPILE=${COMPILE:-false}
WORKERS=$(nproc)
RESULTS=outputs/gpu_check

copy_out() {  # whatever exists, also after a failure
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    (cd "$RESULTS" && tar czf "$OUT/gpu_check.tgz" ./*.json ./*.log) || true
  fi
}
trap copy_out EXIT
mkdir -p "$RESULTS"

if [ -n "${WHEELS:-}" ]; then  # an offline GPU node: its own python3 with torch, ours as wheels
  PY=python3
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  test -x "$PY" || python3.11 -m venv .venv
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -e '.[dev]'
fi
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.__version__, torch.cuda.get_device_name())'

ARCHIVE=$("$PY" -c 'from mask_age_gender.bench.build import bench_archive; print(bench_archive())')
MODEL=(model.pretrained=false model.channels_last=true "model.compile=$COMPILE")  # no hub here
DATA=(data.cache=memory "data.num_workers=$WORKERS")

sets=()
for override in trainer=gpu "${MODEL[@]}" "${DATA[@]}"; do sets+=(--set "$override"); done
bench() {  # NAME [--set KEY=VALUE …]: one benchmark run, into $RESULTS/NAME.json
  local name=$1
  shift
  "$PY" -m mask_age_gender.bench --model resnet50 --image-size 224 224 --batch-size "$BATCH" \
    --photos "$PHOTOS" --workers "$WORKERS" --warm-epochs 1 --epochs "$EPOCHS" \
    --archive "$ARCHIVE" "${sets[@]}" "$@" --out "$RESULTS/$name.json" 2> "$RESULTS/$name.log" \
    || { tail -n 40 "$RESULTS/$name.log"; exit 1; }
}
bench bench
bench bench_deterministic --set trainer.deterministic=true  # issue #6: deterministic kernels
bench bench_normalize_loader --set data.normalize_on=loader  # float batches instead of uint8

"$PY" -m mask_age_gender.train trainer=gpu model=resnet50 "${MODEL[@]}" "${DATA[@]}" \
  "data.root=$ARCHIVE" "data.batch_size=$BATCH" trainer.max_epochs=1 callbacks.progress_bar=null \
  "hydra.run.dir=$RESULTS/train" > "$RESULTS/train.log" 2>&1 \
  || { tail -n 40 "$RESULTS/train.log"; exit 1; }
cp "$RESULTS/train/summary.json" "$RESULTS/train_summary.json"
# predict on the GPU from that checkpoint, then DDP over NCCL (one process on this one GPU)
"$PY" -m mask_age_gender.predict "ckpt=$RESULTS/train/checkpoints/best.ckpt" "data.root=$ARCHIVE" \
  "output=$RESULTS/predict_submission.csv" > "$RESULTS/predict.log" 2>&1 \
  || { tail -n 40 "$RESULTS/predict.log"; exit 1; }
"$PY" -m mask_age_gender.train trainer=ddp trainer.devices=1 model=resnet50 "${MODEL[@]}" \
  "${DATA[@]}" "data.root=$ARCHIVE" "data.batch_size=$BATCH" trainer.max_epochs=1 \
  callbacks.progress_bar=null "hydra.run.dir=$RESULTS/ddp" > "$RESULTS/ddp.log" 2>&1 \
  || { tail -n 40 "$RESULTS/ddp.log"; exit 1; }
cp "$RESULTS/ddp/summary.json" "$RESULTS/ddp_summary.json"

"$PY" - "$RESULTS"/{bench,train_summary,bench_deterministic,bench_normalize_loader,ddp_summary}.json \
  <<'PYTHON'
import json
import sys

bench, summary, deterministic, on_loader, ddp = (json.load(open(path)) for path in sys.argv[1:])
train, model = bench["train_img_s"], bench["model_only_img_s"]
print(f"train_img_s {train:.1f}  model_only_img_s {model:.1f}  "
      f"train/model_only {train / model:.3f} (target >= 0.8)")
print(f"data_only_img_s {bench['data_only_img_s']:.1f}  plain_loop_img_s "
      f"{bench['plain_loop_img_s']:.1f}  predict_img_s {bench['predict_img_s']:.1f}  "
      f"peak RSS {bench['train_peak_rss_mb']:.0f} MB  decode winner {bench['decode']['winner']}")
print(f"1 epoch of mask_age_gender.train: {summary['fit_images_per_s']} img/s over the fit "
      f"(validation included), {summary['seconds']} s, status {summary['status']}")
print(f"predict: {sum(1 for _ in open('outputs/gpu_check/predict_submission.csv')) - 1} rows; "
      f"DDP (NCCL, 1 GPU) 1 epoch: val_f1 {ddp['val_f1']}, status {ddp['status']}")
slow = deterministic["train_img_s"]
print(f"trainer.deterministic=true: train_img_s {slow:.1f}, "
      f"{slow / train:.3f} of the default's")
for key in ("train_img_s", "model_only_img_s", "data_only_img_s", "predict_img_s"):
    print(f"data.normalize_on=device (auto here): {key} {bench[key]:.1f}, "
          f"{bench[key] / on_loader[key]:.3f} of normalize_on=loader's")
PYTHON
