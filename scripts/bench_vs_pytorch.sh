#!/usr/bin/env bash
# Benchmarks vit-burn against PyTorch + Hugging Face transformers on the CPU (see
# scripts/bench_vs_pytorch.py): images/s and peak memory, one process per case.
#
#   bash scripts/bench_vs_pytorch.sh [--case NAME]... [--warmup N] [--iters N] [--rounds R] [--bf16] [--out FILE] [--raw FILE]
#
#   --bf16  adds bfloat16 mixed precision: PyTorch under torch.autocast("cpu", bfloat16) against
#           `vit-train bench --precision bf16`, in a second table.
#
# Environment:
#   VENV=path            Python venv to use or create (default .venv-bench); VENV=/work/venv reuses one.
#   PYTHON=python3       Interpreter that creates the venv.
#   TORCH_INDEX_URL=url  Where pip gets torch (default: the CPU-only wheels on Linux).
#   CARGO_FEATURES=x86-v4  Extra cargo features for the vit-train build.
#   CARGO_TARGET_DIR     Honoured when locating target/release/vit-train.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${VENV:-.venv-bench}"
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating venv $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    default_index=""
    [[ "$(uname -s)" == Linux ]] && default_index="https://download.pytorch.org/whl/cpu"
    index="${TORCH_INDEX_URL-$default_index}"
    echo "installing torch into $VENV${index:+ from $index}" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet ${index:+--index-url "$index"} torch
fi
if ! "$VENV/bin/python" -c "import transformers" 2>/dev/null; then
    echo "installing transformers into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet transformers
fi

echo "building vit-train (release${CARGO_FEATURES:+, features $CARGO_FEATURES})" >&2
cargo build --release -p vit-train ${CARGO_FEATURES:+--features "$CARGO_FEATURES"}

exec "$VENV/bin/python" scripts/bench_vs_pytorch.py \
    --vitburn "${CARGO_TARGET_DIR:-target}/release/vit-train" "$@"
