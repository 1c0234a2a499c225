#!/usr/bin/env bash
# Everything that needs a GPU, in one command (issue 12): dataset on all cores through Dask, CUDA training of
# the best one-step generator (latent-reflow on a latent-fm teacher) and of the 10-step physical diffusion
# reference (DM-10), `kolmo bench closures` at batch 1 / 100 / 1000 (CUDA graphs on CUDA), the coupled paper
# protocol with the closure on the device, a-priori and online evaluation; JSON and one summary table.
#
#   bash benchmarks/gpu.sh [--size ci|gpu] [--out DIR] [--publish]
#
#   --size gpu  (default on a CUDA machine) dong2026 256² → 64² truth, as many trajectories as fit the
#               dataset's time share of a 10-minute run on the machine's cores (GPU_TRAJ, default 2 per
#               worker; the paper's 100 trajectories are estimated from the measured per-trajectory cost in
#               the summary, not claimed). Refuses to run without CUDA: no GPU numbers are estimated.
#   --size ci   64² → 16², a few trajectories and epochs, batches 1 / 8 / 32: the same steps end to end on
#               the CPU in < 3 minutes, so that CI runs the script and it cannot rot (device: cuda if
#               present, else cpu). Its numbers check the plumbing, not the science.
#   --publish   copy summary.json / summary.md and the raw JSON to benchmarks/data/gpu/<size>/.
#
# Rerunning with the same --out resumes: every step skips what it has already written.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=""; OUT=""; PUBLISH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --publish) PUBLISH=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown option $1 (valid: --size ci|gpu, --out DIR, --publish)" >&2; exit 2 ;;
  esac
done
# the Makefile's environment (Numba cache, FFTW wisdom, malloc settings), unless the caller set it
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.numba_cache} KOLMO_CACHE_DIR=${KOLMO_CACHE_DIR:-$PWD/.kolmo_cache}
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-67108864} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-268435456}
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
k() { "$PY" -m cli.main "$@"; }
CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')
[ -n "$SIZE" ] || { [ "$CUDA" = 1 ] && SIZE=gpu || SIZE=ci; }
CORES=$("$PY" -c 'import os; print(len(os.sched_getaffinity(0)))')
case "$SIZE" in
  gpu)
    if [ "$CUDA" != 1 ]; then
      echo "gpu.sh --size gpu needs a CUDA device and none is visible; run --size ci on a CPU machine" >&2; exit 2
    fi
    DEVICE=cuda; FINE=256; COARSE=64; WORKERS=${GPU_WORKERS:-$CORES}; TRAJ=${GPU_TRAJ:-$((2 * WORKERS))}
    TEST=${GPU_TEST:-2}; BURN=20; TEND=40; AE_EPOCHS=10; EPOCHS=30; REFLOW_EPOCHS=10; DM_EPOCHS=30; BATCH=64
    SAMPLES=100; CONDITIONS=10; MEMBERS=8; ONLINE=10; ICS="0 100 200"; BENCH_BATCH=1,100,1000; REPEAT=20
    COUPLED_STEPS=20000; WIDTH=(); THREADS=1 ;;
  ci)
    DEVICE=$([ "$CUDA" = 1 ] && echo cuda || echo cpu); FINE=64; COARSE=16; WORKERS=2; TRAJ=4; TEST=1
    BURN=2; TEND=4; AE_EPOCHS=2; EPOCHS=2; REFLOW_EPOCHS=1; DM_EPOCHS=1; BATCH=32; SAMPLES=8; CONDITIONS=2
    MEMBERS=2; ONLINE=0.2; ICS="0"; BENCH_BATCH=1,8,32; REPEAT=5; COUPLED_STEPS=200; WIDTH=(--width 8)
    THREADS=1 ;;
  *) echo "gpu.sh: unknown --size $SIZE (valid: ci, gpu)" >&2; exit 2 ;;
esac
W=${OUT:-build/gpu-$SIZE}
mkdir -p "$W"
GRAPH=(); [ "$DEVICE" = cuda ] && GRAPH=(--cuda-graph)
echo "gpu.sh: size $SIZE, device $DEVICE, $CORES cores ($WORKERS Dask workers), out $W"
stamp() { "$PY" - "$W/timings.json" "$1" "$2" "$3" <<'EOF'
import json, sys, pathlib
p = pathlib.Path(sys.argv[1]); d = json.loads(p.read_text()) if p.exists() else {}
d[sys.argv[2]] = float(sys.argv[4]) - float(sys.argv[3]); p.write_text(json.dumps(d, indent=1))
EOF
}
step() {  # name, then the command; skipped when W/name.done exists; wall time recorded in timings.json
  local name=$1; shift
  [ -f "$W/$name.done" ] && return 0
  local t0; t0=$(date +%s.%N)
  "$@" > "$W/$name.log" 2>&1 || { echo "gpu.sh: step $name failed (log: $W/$name.log)" >&2; tail -n 20 "$W/$name.log" >&2; exit 1; }
  stamp "$name" "$t0" "$(date +%s.%N)"
  echo "  $name done"
  touch "$W/$name.done"
}

# 1. data: the truth on all cores (one Dask worker per core; the client alone writes the file)
step dataset k dataset --preset dong2026 --fine "$FINE" --coarse "$COARSE" --trajectories "$TRAJ" \
  --test-trajectories "$TEST" --burn-in "$BURN" --t-end "$TEND" --workers "$WORKERS" --out "$W/data.h5"
# 2. training on the device: the FM teacher, its one-step reflow student, the physical DM-10 reference
COMMON=(--batch "$BATCH" --device "$DEVICE" --threads "$THREADS" --seed 0 "${WIDTH[@]}")
step train-fm k train --data "$W/data.h5" --out "$W/fm" --model latent-fm --reg mp --condition pooled \
  --ae-epochs "$AE_EPOCHS" --epochs "$EPOCHS" "${COMMON[@]}"
step train-rf k train --data "$W/data.h5" --out "$W/rf" --model latent-reflow --teacher "$W/fm" --teacher-steps 20 \
  --epochs "$REFLOW_EPOCHS" "${COMMON[@]}"
step train-dm k train --data "$W/data.h5" --out "$W/dm" --model dm --epochs "$DM_EPOCHS" "${COMMON[@]}"
# 3. artifacts and a-priori scores (CPU, all cores)
for row in "rf1 rf 1" "dm10 dm 10"; do
  read -r name run steps <<< "$row"
  step "export-$name" k export "$W/$run" --steps "$steps" --out "$W/$name.pt"
  step "apriori-$name" k evaluate apriori "$W/$run" --data "$W/data.h5" --steps "$steps" --samples "$SAMPLES" \
    --conditions "$CONDITIONS" --threads "$CORES" --json "$W/apriori-$name.json"
done
# 4. speed on the device: artifact latency, and the coupled paper protocol with the closure on the device
# (TorchScript's profiling executor specialises on the first calls of each batch size: 3 warm-up calls)
step bench-closures k bench closures "$W/dm10.pt" "$W/rf1.pt" --device "$DEVICE" --batch "$BENCH_BATCH" \
  --repeat "$REPEAT" --warmup 3 "${GRAPH[@]}" --json "$W/bench-closures.json"
for m in 1 "$MEMBERS"; do
  step "bench-coupled-b$m" k bench coupled --closure "$W/rf1.pt" --closure "$W/dm10.pt" --preset dong2026 --grid "$COARSE" \
    --steps "$COUPLED_STEPS" --members "$m" --init "$W/data.h5:test:0" --device "$DEVICE" --json "$W/bench-coupled-b$m.json"
done
# 5. online: paper cadence, MEMBERS members per closure, from each initial condition of the test split
for ic in $ICS; do
  for row in "none none" "true replay:$W/data.h5" "rf1 $W/rf1.pt" "dm10 $W/dm10.pt"; do
    read -r name spec <<< "$row"
    step "online-$name-ic$ic" k run --protocol paper --grid "$COARSE" --init "$W/data.h5:test:$ic" --closure "$spec" \
      --members "$MEMBERS" --time "$ONLINE" --device "$DEVICE" --out "$W/online-$name-ic$ic.h5"
  done
  for name in rf1 dm10; do
    step "report-$name-ic$ic" k evaluate online "$W/online-$name-ic$ic.h5" --reference "$W/data.h5:test" \
      --baseline "$W/online-none-ic$ic.h5" --baseline "$W/online-true-ic$ic.h5" --out "$W/report-$name-ic$ic" \
      --horizons "$("$PY" -c "t=$ONLINE; print(','.join(f'{x:g}' for x in (t/4, t/2, t)))")"
  done
done
# 6. one table
"$PY" benchmarks/gpu_summary.py "$W" --size "$SIZE" --device "$DEVICE" --workers "$WORKERS" --trajectories "$TRAJ"
if [ "$PUBLISH" = 1 ]; then
  dest=benchmarks/data/gpu/$SIZE; mkdir -p "$dest"
  cp "$W"/summary.json "$W"/summary.md "$W"/timings.json "$W"/apriori-*.json "$W"/bench-*.json "$dest"/
  for d in "$W"/report-*; do cp "$d/metrics.json" "$dest/online-$(basename "$d").json"; done
  echo "published to $dest"
fi
