#!/usr/bin/env bash
# Builds the shipped closure coupling/artifacts/dong2026-default.pt (selected with
# `kolmo run --closure dong2026-default`) from data this repository's own commands generate:
# dataset → train one-step latent FM with the MP regularizer → a-priori evaluation → export
# (self-checked) → latency benchmark → online check against the truth and no closure.
#
# Usage: bash benchmarks/default_closure.sh [WORKDIR]
# Sizes come from the environment (defaults: the reduced CPU size recorded in benchmarks/RESULTS.md);
# on a GPU machine use e.g. FINE=256 TRAJ=100 TEST=10 BURN=20 TEND=40 EPOCHS=500 AE_EPOCHS=200 DEVICE=cuda.
set -euo pipefail
W=${1:-build/default-closure}
FINE=${FINE:-128}; TRAJ=${TRAJ:-20}; TEST=${TEST:-2}; BURN=${BURN:-10}; TEND=${TEND:-30}
EPOCHS=${EPOCHS:-40}; AE_EPOCHS=${AE_EPOCHS:-20}; BATCH=${BATCH:-64}; DEVICE=${DEVICE:-cpu}
MEMBERS=${MEMBERS:-8}; ONLINE=${ONLINE:-10}; THREADS=${THREADS:-2}
mkdir -p "$W"
kolmo() { command kolmo "$@"; }
set -x
[ -f "$W/data.h5" ] || kolmo dataset --preset dong2026 --fine "$FINE" --coarse 64 --trajectories "$TRAJ" \
    --test-trajectories "$TEST" --burn-in "$BURN" --t-end "$TEND" --threads "$THREADS" --out "$W/data.h5"
RESUME=(); [ -d "$W/run" ] && RESUME=(--resume)
kolmo train --data "$W/data.h5" --model latent-fm --reg mp --autoencoder conv --condition encoder \
    --epochs "$EPOCHS" --ae-epochs "$AE_EPOCHS" --batch "$BATCH" --device "$DEVICE" --seed 0 --out "$W/run" "${RESUME[@]}"
kolmo evaluate "$W/run" --data "$W/data.h5" --samples 100 --conditions 10 --json "$W/apriori.json"
rm -f "$W/dong2026-default.pt"
kolmo export "$W/run" --out "$W/dong2026-default.pt"
kolmo bench closures "$W/dong2026-default.pt" --batch 1,"$MEMBERS",100 --json "$W/bench.json"
for c in none "$W/dong2026-default.pt" "replay:$W/data.h5"; do
  name=$(basename "${c%.pt}"); name=${name/replay:*/true}
  [ -f "$W/online-$name.h5" ] || kolmo run --protocol paper --init "$W/data.h5:test:0" --closure "$c" \
      --members "$MEMBERS" --time "$ONLINE" --threads 1 --out "$W/online-$name.h5"
done
rm -rf "$W/report"
kolmo evaluate "$W/online-dong2026-default.h5" --online --reference "$W/data.h5:test" \
    --baseline "$W/online-none.h5" --baseline "$W/online-true.h5" --out "$W/report" --horizons 2.5,5,7.5,10
cp "$W/dong2026-default.pt" coupling/artifacts/dong2026-default.pt
ls -l coupling/artifacts/dong2026-default.pt
