#!/usr/bin/env bash
# Training on several processes (issue 12): seconds per epoch with 1 process and with `kolmo train --nproc 2`
# (torchrun, gloo, CPU) on the same small config and the same global batch, and the losses of both.
#
#   1p-1t   one process, 1 torch thread          (kolmo train --threads 1)
#   1p-2t   one process, 2 torch threads         (kolmo train --threads 2)
#   2p-1t   two processes, 1 thread each         (kolmo train --nproc 2 --threads 1)
#
# Models: latent-fm with MP (conv autoencoders: AE_EPOCHS autoencoder epochs, then EPOCHS generator epochs)
# and the physical fm (an FNO on the COARSE² field, EPOCHS epochs). Data: dong2026, FINE² → COARSE², TRAJ
# trajectories (TEST of them test), recorded every 0.1 in [BURN, TEND).
# Usage: bash benchmarks/ddp.sh [WORKDIR]; writes WORKDIR/epoch-times.json (copy it to benchmarks/data/ddp/).
set -euo pipefail
W=${1:-build/ddp}
FINE=${FINE:-128}; COARSE=${COARSE:-32}; TRAJ=${TRAJ:-8}; TEST=${TEST:-2}; BURN=${BURN:-5}; TEND=${TEND:-15}
EPOCHS=${EPOCHS:-3}; AE_EPOCHS=${AE_EPOCHS:-2}; BATCH=${BATCH:-64}
mkdir -p "$W"
k() { kolmo "$@"; }
[ -f "$W/data.h5" ] || k dataset --preset dong2026 --fine "$FINE" --coarse "$COARSE" --trajectories "$TRAJ" \
    --test-trajectories "$TEST" --burn-in "$BURN" --t-end "$TEND" --threads 1 --out "$W/data.h5" > "$W/data.log"

run() {  # name, then kolmo train options
  local name=$1; shift
  [ -f "$W/$name/run.json" ] && return
  rm -rf "${W:?}/$name"
  local t0 load0; t0=$(date +%s.%N); load0=$(cut -d' ' -f1-3 /proc/loadavg)
  k train --data "$W/data.h5" --out "$W/$name" --batch "$BATCH" --seed 0 "$@" > "$W/$name.log" 2>&1
  echo "{\"wall_s\": $(echo "$(date +%s.%N) - $t0" | bc), \"load_before\": \"$load0\", \"load_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" \
      > "$W/$name.wall.json"
}
for model in latent-fm fm; do
  opts=(--model "$model" --epochs "$EPOCHS"); [ "$model" = latent-fm ] && opts+=(--reg mp --ae-epochs "$AE_EPOCHS")
  run "$model-1p-1t" "${opts[@]}" --threads 1
  run "$model-1p-2t" "${opts[@]}" --threads 2
  run "$model-2p-1t" "${opts[@]}" --threads 1 --nproc 2
done

W="$W" python - <<'EOF'
import json, os, platform, statistics
from pathlib import Path

w = Path(os.environ["W"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 2**20
out = {"machine": f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, CPU only (shared with other jobs)",
       "python": platform.python_version(), "load": "1/5/15-min load averages of /proc/loadavg", "runs": {}}
for run in sorted(p for p in w.iterdir() if (p / "run.json").is_file()):
    r = json.loads((run / "run.json").read_text())
    hist = r["history"]
    phases = {}
    for phase in dict.fromkeys(h["phase"] for h in hist):
        hs = [h for h in hist if h["phase"] == phase]
        phases[phase] = {"epochs": len(hs), "seconds_per_epoch": [h["seconds"] for h in hs],
                         "median_seconds_per_epoch": statistics.median(h["seconds"] for h in hs),
                         "samples_per_epoch": hs[0]["samples"], "train_loss": [h["train_loss"] for h in hs],
                         "val_loss": [h["val_loss"] for h in hs]}
    out["runs"][run.name] = {"processes": hist[-1].get("processes", 1), "batch": r["config"]["batch"],
                             "model": r["model"], "phases": phases,
                             **json.loads((w / f"{run.name}.wall.json").read_text())}
for name, r in out["runs"].items():  # the same global batch: losses equal to float-summation order
    ref = out["runs"].get(name.rsplit("-", 2)[0] + "-1p-1t")
    if ref is not None:
        r["max_rel_loss_diff_vs_1p_1t"] = max(abs(a / b - 1) for phase, p in r["phases"].items()
                                              for key in ("train_loss", "val_loss")
                                              for a, b in zip(p[key], ref["phases"][phase][key]))
(w / "epoch-times.json").write_text(json.dumps(out, indent=1))
print(f"{'run':18s} {'phase':12s} {'s/epoch (median)':>17s} {'wall s':>8s} {'max rel diff':>12s}  losses")
for name, r in out["runs"].items():
    for phase, p in r["phases"].items():
        print(f"{name:18s} {phase:12s} {p['median_seconds_per_epoch']:17.2f} {r['wall_s']:8.1f} "
              f"{r.get('max_rel_loss_diff_vs_1p_1t', float('nan')):12.1e}  "
              + " ".join(f"{x:.6g}" for x in p["train_loss"]))
EOF
