#!/usr/bin/env bash
# Builds the shipped closure coupling/artifacts/dong2026-default.pt (selected with
# `kolmo run --closure dong2026-default`): the best calibrated one-step generator of the issue-10 study,
# RF-1 = latent-reflow (conv latent, MP regularizer, pooled condition; one Euler step on couplings drawn
# by its 20-step latent-fm teacher), on the noise-free missing-physics target.
#
# The study (benchmarks/one_step.sh) trains every family on the same data with the same budget and picks
# the default from the measured a-priori and online scores (benchmarks/RESULTS.md); this script runs it
# (resumable) and publishes its RF-1 artifact. Sizes come from the environment, as in one_step.sh.
#
# Usage: bash benchmarks/default_closure.sh [WORKDIR]
set -euo pipefail
W=${1:-build/one-step}
bash "$(dirname "$0")/one_step.sh" "$W"
cp "$W/rf1.pt" coupling/artifacts/dong2026-default.pt
ls -l coupling/artifacts/dong2026-default.pt
