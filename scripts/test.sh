#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run):
#   0. `cargo fmt --check`;
#   1. every test of the workspace on Burn's CPU backend (flex), the HF parity suite included;
#   2. `cargo clippy --workspace --all-targets -- -D warnings`.
# Opt-in, each adding about 10 minutes on a 2-core machine (CI runs neither, to stay under 30):
#   VIT_TEST_GPU_CHECK=1: step 2 with every GPU backend feature of vit-train on (wgpu, vulkan,
#      metal, cuda, rocm): the lints and the GPU type-check in one check-mode build;
#   VIT_TEST_WGPU=1: 3. the model parity suite on the wgpu backend (needs a Vulkan driver; without
#      a GPU, Mesa's software one: apt-get install mesa-vulkan-drivers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*" >&2; }
wgpu=${VIT_TEST_WGPU:-0}
features=()
[[ "$wgpu" == 1 ]] && features=(--features vit-model/wgpu)
gpu_features=()
[[ "${VIT_TEST_GPU_CHECK:-0}" == 1 ]] &&
    gpu_features=(--features vit-train/wgpu,vit-train/vulkan,vit-train/metal,vit-train/cuda,vit-train/rocm)

step "formatting (cargo fmt --check)"
cargo fmt --all --check

step "tests (CPU backend)"
cargo test --workspace --locked "${features[@]}"

# Burn's cuda and rocm backends get LLVM through tracel-llvm-bundler, whose build script downloads
# it; under DOCS_RS it skips the download, which is all a type-check needs.
step "cargo clippy (warnings are errors)${gpu_features:+, every GPU backend (DOCS_RS=1: no LLVM download)}"
DOCS_RS=1 cargo clippy --workspace --all-targets --locked "${features[@]}" "${gpu_features[@]}" -- -D warnings

if [[ "$wgpu" == 1 ]]; then
    step "parity suite on wgpu"
    VIT_TEST_DEVICE=wgpu cargo test --workspace --locked "${features[@]}" --test parity
fi
