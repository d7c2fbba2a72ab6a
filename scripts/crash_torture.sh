#!/usr/bin/env bash
# Crash torture (issue: nothing lost): kills a small training run with SIGKILL at many random
# points — half at random times, half while a checkpoint file is being written — restarting it each
# time, then checks that the final weights and metrics.csv equal an uninterrupted run's bit for bit.
#
#   scripts/crash_torture.sh            # 40 kills
#   KILLS=100 SEED=7 scripts/crash_torture.sh
#
# The same test runs in CI with 6 kills (vit-train/tests/crash_torture.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
VIT_TORTURE_KILLS="${KILLS:-40}" VIT_TORTURE_SEED="${SEED:-$(date +%s)}" \
    cargo test --locked -p vit-train --test crash_torture -- --nocapture 2>&1 | grep -E "crash torture|test result|panicked|assert"
