#!/usr/bin/env bash
# One network evaluation, the full conditional law (issue 10): trains every generator family on the same
# dong2026 data with the same budget, then compares them a priori and online, and times their artifacts.
#
#   FM-1 / FM-10   latent-fm (conv latent, MP, pooled condition), 1 and 10 Euler steps (one model)
#   SI-10          latent-si, 10 Euler–Maruyama steps
#   DM-10          physical VE-SDE diffusion, 10 Euler–Maruyama steps (the reference's P-CDM sampler)
#   MF-1           latent-mf, one MeanFlow jump
#   RF-1           latent-reflow, one Euler step, trained on couplings drawn by FM-20 (the FM teacher)
#   RF-1 (x5)      the same student trained REFLOW_LONG_EPOCHS epochs (reflow epochs cost ~1/4 of an FM epoch)
#
# Budget: EPOCHS generator epochs (and AE_EPOCHS autoencoder epochs for latent models) for every latent
# family, batch BATCH; the reflow student trains REFLOW_EPOCHS more epochs on top of its teacher. The physical
# DM (no autoencoder, a 64² FNO: ~9x the wall time per epoch of the latent generators here) trains DM_EPOCHS
# epochs, chosen so that its wall time matches the FM teacher's whole training (autoencoder + generator) on
# this 2-core CPU: equal wall time, not equal gradient steps (stated in the summary). Usage: bash benchmarks/one_step.sh [WORKDIR]; rerunning resumes (every step skips what exists).
# Results: WORKDIR/summary.json and .md; copy them to benchmarks/data/one_step/ to publish.
set -euo pipefail
W=${1:-build/one-step}
FINE=${FINE:-128}; COARSE=${COARSE:-64}; TRAJ=${TRAJ:-20}; TEST=${TEST:-2}; BURN=${BURN:-10}; TEND=${TEND:-30}
EPOCHS=${EPOCHS:-20}; AE_EPOCHS=${AE_EPOCHS:-10}; REFLOW_EPOCHS=${REFLOW_EPOCHS:-10}; BATCH=${BATCH:-64}
DM_EPOCHS=${DM_EPOCHS:-7}; REFLOW_LONG_EPOCHS=${REFLOW_LONG_EPOCHS:-50}
TEACHER_STEPS=${TEACHER_STEPS:-20}; SAMPLES=${SAMPLES:-100}; CONDITIONS=${CONDITIONS:-10}
MEMBERS=${MEMBERS:-8}; ONLINE=${ONLINE:-10}; ICS=${ICS:-0 100 200}; DEVICE=${DEVICE:-cpu}
# The physical DM-10 closure costs ~1 s per 8-member call on the 2-core CPU (2,000 calls per 10 time units):
# online it runs from the first initial condition only, for DM_ONLINE time units (stated in the summary).
DM_ONLINE=${DM_ONLINE:-5}; REPEAT=${REPEAT:-5}; BENCH_BATCH=${BENCH_BATCH:-1,8,100}
mkdir -p "$W"
k() { kolmo "$@"; }
LATENT=(--reg mp --condition pooled --ae-epochs "$AE_EPOCHS")
COMMON=(--epochs "$EPOCHS" --batch "$BATCH" --device "$DEVICE" --threads 1 --seed 0)

[ -f "$W/data.h5" ] || k dataset --preset dong2026 --fine "$FINE" --coarse "$COARSE" --trajectories "$TRAJ" \
    --test-trajectories "$TEST" --burn-in "$BURN" --t-end "$TEND" --threads 1 --out "$W/data.h5"

train() {  # name, then kolmo train options
  local name=$1; shift
  if [ -f "$W/$name/run.json" ] && [ -f "$W/$name.trained" ]; then return; fi
  [ -d "$W/$name" ] && [ ! -f "$W/$name/last.pt" ] && rm -rf "${W:?}/$name"  # failed before its first epoch
  local resume=(); [ -d "$W/$name" ] && resume=(--resume)
  k train --data "$W/data.h5" --out "$W/$name" "$@" "${resume[@]}" > "$W/$name.log" 2>&1
  touch "$W/$name.trained"
}
# two lanes on two cores
( train fm --model latent-fm "${LATENT[@]}" "${COMMON[@]}"
  train reflow --model latent-reflow --teacher "$W/fm" --teacher-steps "$TEACHER_STEPS" --epochs "$REFLOW_EPOCHS" \
      --batch "$BATCH" --device "$DEVICE" --threads 1 --seed 0
  train si --model latent-si "${LATENT[@]}" "${COMMON[@]}"
  train reflow50 --model latent-reflow --teacher "$W/fm" --teacher-steps "$TEACHER_STEPS" \
      --epochs "$REFLOW_LONG_EPOCHS" --batch "$BATCH" --device "$DEVICE" --threads 1 --seed 0 ) & lane_a=$!
( train mf --model latent-mf "${LATENT[@]}" "${COMMON[@]}"
  train dm --model dm --epochs "$DM_EPOCHS" --batch "$BATCH" --device "$DEVICE" --threads 1 --seed 0
  # the thin decoder (issue 13: ~2.6x fewer FLOPs per sample): the same recipe with --ae-channels 4,8,16
  train fm-thin --model latent-fm "${LATENT[@]}" --ae-channels 4,8,16 "${COMMON[@]}"
  train reflow-thin --model latent-reflow --teacher "$W/fm-thin" --teacher-steps "$TEACHER_STEPS" \
      --epochs "$REFLOW_EPOCHS" --batch "$BATCH" --device "$DEVICE" --threads 1 --seed 0 ) & lane_b=$!
wait "$lane_a"; wait "$lane_b"

# name  run  steps
ROWS=("fm1 fm 1" "fm10 fm 10" "si10 si 10" "dm10 dm 10" "mf1 mf 1" "rf1 reflow 1" "rf1long reflow50 1"
      "fm10thin fm-thin 10" "rf1thin reflow-thin 1")
NO_ONLINE=" dm10 fm10thin "  # DM-10 runs online in its own lane below; FM-10 thin is scored a priori only
apriori_and_export() {  # name run steps
  [ -f "$W/apriori-$1.json" ] || k evaluate apriori "$W/$2" --data "$W/data.h5" --steps "$3" \
      --samples "$SAMPLES" --conditions "$CONDITIONS" --threads 1 --json "$W/apriori-$1.json" > /dev/null
  [ -f "$W/$1.pt" ] || k export "$W/$2" --steps "$3" --out "$W/$1.pt" > /dev/null
}
online() {  # closure spec, label, initial-condition index[, time]
  local out="$W/online-$2-ic$3.h5"
  [ -f "$out" ] || k run --protocol paper --init "$W/data.h5:test:$3" --closure "$1" --members "$MEMBERS" \
      --time "${4:-$ONLINE}" --threads 1 --out "$out" > /dev/null
}
FIRST_IC=${ICS%% *}
# the slow DM-10 lane (a priori, export, its online run) beside everything else
( apriori_and_export dm10 dm 10 && online "$W/dm10.pt" dm10 "$FIRST_IC" "$DM_ONLINE" ) & dm_pid=$!
for row in "${ROWS[@]}"; do read -r name run steps <<< "$row"; [ "$name" = dm10 ] || apriori_and_export "$name" "$run" "$steps"; done
while [ ! -f "$W/dm10.pt" ]; do kill -0 "$dm_pid" 2>/dev/null || break; sleep 5; done
# every artifact in one run, 1 torch thread (the fastest setting at batch 1 here); speed-ups vs DM-10 within it
[ -f "$W/bench.json" ] || k bench closures "$W/dm10.pt" "$W/fm1.pt" "$W/fm10.pt" "$W/si10.pt" "$W/mf1.pt" \
    "$W/rf1.pt" "$W/rf1long.pt" "$W/rf1thin.pt" --batch "$BENCH_BATCH" --repeat "$REPEAT" --warmup 3 --threads 1 \
    --json "$W/bench.json" > /dev/null

report() {  # name ic
  [ -f "$W/online-$1-ic$2.h5" ] || return 0
  [ -d "$W/report-$1-ic$2" ] || k evaluate online "$W/online-$1-ic$2.h5" --reference "$W/data.h5:test" \
      --baseline "$W/online-none-ic$2.h5" --baseline "$W/online-true-ic$2.h5" --out "$W/report-$1-ic$2" \
      --horizons 2.5,5,10 > /dev/null
}
for ic in $ICS; do
  online none none "$ic"; online "replay:$W/data.h5" true "$ic"
  pids=()
  for row in "${ROWS[@]}"; do
    read -r name _ _ <<< "$row"
    case "$NO_ONLINE" in *" $name "*) continue ;; esac
    online "$W/$name.pt" "$name" "$ic" & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  for row in "${ROWS[@]}"; do read -r name _ _ <<< "$row"; case "$NO_ONLINE" in *" $name "*) ;; *) report "$name" "$ic" ;; esac; done
done
wait "$dm_pid"; report dm10 "$FIRST_IC"
python benchmarks/one_step_summary.py "$W" --epochs "$EPOCHS" --ae-epochs "$AE_EPOCHS" \
    --reflow-epochs "$REFLOW_EPOCHS" --reflow-long-epochs "$REFLOW_LONG_EPOCHS" --dm-epochs "$DM_EPOCHS" --batch "$BATCH"
