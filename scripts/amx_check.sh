#!/usr/bin/env bash
# The checks the AMX bfloat16 kernel (vit_model::kernels::bf16_tiles) needs on a CPU that has AMX
# (Intel Sapphire Rapids or later, Linux 5.16+): none of the machines it was written on had one,
# so this is where it runs for the first time.
#
#   bash scripts/amx_check.sh [--no-pytorch]
#
# 1. Says whether the CPU lists amx_tile / amx_bf16 and what vit-burn decides (the start-up check
#    compares the AMX unit with its software model; a disagreement is printed and AMX not used).
# 2. The tile tests (packing, the model, AMX against the model on ViT-sized products) and the HF
#    parity fixtures in bf16 on every kernel, AMX included.
# 3. The dense-layer micro-benchmark: float32, bf16 on the float32 kernels, bf16 on AMX.
# 4. Unless --no-pytorch: vit-burn bf16 against PyTorch autocast bf16 on the issue's two target
#    cases (scripts/bench_vs_pytorch.sh --bf16; VENV= reuses a venv with torch + transformers).
#
# Exits non-zero when any step fails; on a CPU without AMX it says so and stops after step 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pytorch=1
[[ "${1:-}" == "--no-pytorch" ]] && pytorch=0
step() { printf '\n== %s\n' "$*" >&2; }

step "1. CPU flags and the kernel vit-burn chooses"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(amx_tile|amx_bf16|avx512_bf16)$' | tr '\n' ' ' || true)
echo "cpuinfo: ${flags:-no amx_tile, amx_bf16 or avx512_bf16}" >&2
cargo build --release -p vit-train
./target/release/vit-train bench --case infer-vit-ti16-224-b1 --precision bf16 --warmup 0 --iters 1 2>&1 |
    grep -E '^bench: bf16' >&2
if [[ "$flags" != *amx_bf16* ]]; then
    echo "this CPU has no AMX: nothing more to check here" >&2
    exit 0
fi

step "2. tile tests and bf16 parity on every kernel"
cargo test --release -p vit-model --lib bf16 -- --nocapture
cargo test --release -p vit-model --test parity reduced_precision -- --nocapture
VIT_BF16_KERNEL=amx cargo test --release -p vit-train --test train_e2e mixed_precision

step "3. dense-layer micro-benchmark"
cargo bench -p vit-model --bench precision_kernels

if [[ "$pytorch" == 1 ]]; then
    step "4. against PyTorch autocast bf16"
    bash scripts/bench_vs_pytorch.sh --bf16 --case infer-vit-b16-224-b8 --case train-vit-ti4-32-6l-b64
fi
