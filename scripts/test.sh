#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run):
#   1. every test of the workspace on Burn's CPU backend (flex), the HF parity suite included,
#      in a build that also has the wgpu backend compiled in (so step 3 rebuilds nothing);
#   2. `cargo check` of vit-train with every GPU backend feature (wgpu, vulkan, metal, cuda, rocm);
#   3. the model parity suite again on the wgpu backend, where a Vulkan driver is installed (CI
#      installs Mesa's software driver, lavapipe; elsewhere this step says how to enable it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "tests (CPU backend)"
cargo test --workspace --locked --features vit-model/wgpu

# Burn's cuda and rocm backends get LLVM through tracel-llvm-bundler, whose build script downloads
# it; under DOCS_RS it skips the download, which is all a type-check needs.
step "cargo check with every GPU backend (DOCS_RS=1: no LLVM download for cuda/rocm)"
DOCS_RS=1 cargo check --locked -p vit-train --features wgpu,vulkan,metal,cuda,rocm

if compgen -G "/usr/share/vulkan/icd.d/*.json" > /dev/null || compgen -G "/etc/vulkan/icd.d/*.json" > /dev/null; then
    step "parity suite on wgpu"
    VIT_TEST_DEVICE=wgpu cargo test --workspace --locked --features vit-model/wgpu --test parity
else
    step "parity suite on wgpu: skipped, no Vulkan driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers)"
fi
