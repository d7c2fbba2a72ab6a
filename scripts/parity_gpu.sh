#!/usr/bin/env bash
# Runs the vit-model parity suite on a GPU backend.
#   scripts/parity_gpu.sh wgpu     # any GPU through wgpu (WGSL); also Mesa's software Vulkan (lavapipe)
#   scripts/parity_gpu.sh cuda     # NVIDIA
# Without a GPU, wgpu runs on lavapipe: `apt-get install mesa-vulkan-drivers libvulkan1` first
# (slow, ~10x the CPU backend, and a first start of a few minutes for shader compilation).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-wgpu}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
VIT_TEST_DEVICE="$backend" cargo test --release -p vit-model --features "$backend" --test parity -- --nocapture
