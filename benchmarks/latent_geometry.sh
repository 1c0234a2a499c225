#!/usr/bin/env bash
# Latent geometry (issue 10, §3 GA bullet): does an unregularized latent fail, with and without the scalar
# latent standardisation, and does GA do anything at its published scale?
#
#   reg        none | mp | ga-reference (published exp(-D) weights) | ga-median (fixed scale, the default)
#              | ga-median-w0.1 (fixed scale at weight 0.1 instead of the reference's 1e-3)
#   latent     std (scalar standardisation x1 = (z - a)/b, the default) | raw (--no-standardise, a = 0, b = 1)
#
# Every run: latent-fm, conv target autoencoder, pooled condition, AE_EPOCHS autoencoder epochs then EPOCHS
# generator epochs, batch BATCH, seed 0, 1 torch thread (the same budget for all ten). Each model is
# evaluated a priori with 10 and 1 Euler steps (SAMPLES samples x CONDITIONS test conditions), which also
# reports the latent-geometry measures of closure.geometry (k = 10, up to 500 test pairs).
# Usage: PYTHON=.venv/bin/python bash benchmarks/latent_geometry.sh [WORKDIR]; rerunning resumes.
# LANES="a b c" (default) picks the lanes run in parallel; the summary is written when all three ran.
# Results: WORKDIR/summary.json and .md; copy them with the apriori-*.json files to
# benchmarks/data/latent_geometry/ to publish.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
W=${1:-build/latent-geometry}
PY=${PYTHON:-python}
FINE=${FINE:-64}; COARSE=${COARSE:-32}; TRAJ=${TRAJ:-12}; TEST=${TEST:-2}; BURN=${BURN:-10}; TEND=${TEND:-20}
EPOCHS=${EPOCHS:-30}; AE_EPOCHS=${AE_EPOCHS:-20}; BATCH=${BATCH:-64}; SAMPLES=${SAMPLES:-100}
CONDITIONS=${CONDITIONS:-10}; NICE=${NICE:-10}
mkdir -p "$W"
k() { nice -n "$NICE" "$PY" -m cli.main "$@"; }
COMMON=(--model latent-fm --condition pooled --ae-epochs "$AE_EPOCHS" --epochs "$EPOCHS" --batch "$BATCH"
        --threads 1 --seed 0)

[ -f "$W/data.h5" ] || k dataset --preset dong2026 --fine "$FINE" --coarse "$COARSE" --trajectories "$TRAJ" \
    --test-trajectories "$TEST" --burn-in "$BURN" --t-end "$TEND" --members-per-batch 4 --threads 1 \
    --out "$W/data.h5"

train() {  # name, then kolmo train options
  local name=$1; shift
  if [ -f "$W/$name.trained" ]; then return; fi
  [ -d "$W/$name" ] && [ ! -f "$W/$name/last.pt" ] && rm -rf "${W:?}/$name"  # failed before its first epoch
  local resume=(); [ -d "$W/$name" ] && resume=(--resume)
  k train --data "$W/data.h5" --out "$W/$name" "$@" "${resume[@]}" > "$W/$name.log" 2>&1
  touch "$W/$name.trained"
}
evaluate() {  # name
  for steps in 10 1; do
    [ -f "$W/apriori-$1-s$steps.json" ] || k evaluate apriori "$W/$1" --data "$W/data.h5" --steps "$steps" \
        --samples "$SAMPLES" --conditions "$CONDITIONS" --threads 1 --json "$W/apriori-$1-s$steps.json" > /dev/null
  done
}
run() {  # name, then kolmo train options
  train "$@"; evaluate "$1"
}
lane_a() {
  run none-std --reg none "${COMMON[@]}"
  run none-raw --reg none --no-standardise "${COMMON[@]}"
  run mp-std --reg mp "${COMMON[@]}"
  run mp-raw --reg mp --no-standardise "${COMMON[@]}"
}
lane_b() {
  run ga-median-std --reg ga --ga-scale median "${COMMON[@]}"
  run ga-median-raw --reg ga --ga-scale median --no-standardise "${COMMON[@]}"
  run ga-reference-std --reg ga --ga-scale reference "${COMMON[@]}"
  run ga-reference-raw --reg ga --ga-scale reference --no-standardise "${COMMON[@]}"
}
lane_c() {
  run ga-median-w0.1-std --reg ga --ga-scale median --ga-weight 0.1 "${COMMON[@]}"
  run ga-median-w0.1-raw --reg ga --ga-scale median --ga-weight 0.1 --no-standardise "${COMMON[@]}"
}
LANES=${LANES:-a b c}
pids=()
for lane in $LANES; do "lane_$lane" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done
[ "$LANES" = "a b c" ] || exit 0
"$PY" "$ROOT/benchmarks/latent_geometry_summary.py" "$W" --epochs "$EPOCHS" --ae-epochs "$AE_EPOCHS" --batch "$BATCH"
