#!/usr/bin/env bash
# Fuzzes the readers of user files (safetensors, model.safetensors.index.json, config.json,
# preprocessor_config.json, images, CIFAR records, and the run-config TOML) for a bounded time.
#
#   scripts/fuzz.sh                      # 60 s in all
#   FUZZ_SECONDS=600 scripts/fuzz.sh     # longer
#   FUZZ_SEED=7 FUZZ_TARGETS=image,config scripts/fuzz.sh
#
# The time is split evenly over the targets (the run-config parser, which lives in the vit-train
# binary, is fuzzed by a unit test there, in the test profile, and gets one share). The readers,
# and the decoders they rely on, are built in release with overflow checks on, so an arithmetic
# overflow is a panic.
# Findings are saved to fuzz-findings/<target>-<hash>.bin (replay one with
# `target/release/vit-fuzz --replay FILE`), and the script exits non-zero if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
seed="${FUZZ_SEED:-$(date +%s)}"
targets="${FUZZ_TARGETS:-}"
findings="${FUZZ_FINDINGS:-fuzz-findings}"

checked=(vit-model vit-data vit-fuzz image png gif tiff zune-jpeg zune-core image-webp qoi exr fdeflate weezl fax "safetensors@0.6.2")
config=()
for p in "${checked[@]}"; do
  config+=(--config "profile.release.package.\"$p\".overflow-checks=true")
done

echo "== building vit-fuzz (release, overflow checks on)"
cargo build --release -p vit-fuzz "${config[@]}"

# Shares: one per vit-fuzz target, plus one for the run config unless targets are chosen.
if [[ -n "$targets" ]]; then
  n_fuzz=$(tr ',' '\n' <<<"$targets" | grep -c .)
  run_config=0
  [[ ",$targets," == *",run_config,"* ]] && run_config=1 && n_fuzz=$((n_fuzz - 1))
  targets=$(tr ',' '\n' <<<"$targets" | grep -v '^run_config$' | paste -sd, -)
else
  n_fuzz=$(target/release/vit-fuzz --list | wc -l)
  run_config=1
fi
shares=$((n_fuzz + run_config))
fuzz_seconds=$(awk -v s="$seconds" -v n="$n_fuzz" -v t="$shares" 'BEGIN { printf "%.1f", s * n / t }')
rc_seconds=$(awk -v s="$seconds" -v t="$shares" 'BEGIN { printf "%.1f", s / t }')

status=0
if [[ "$n_fuzz" -gt 0 ]]; then
  echo "== vit-fuzz: ${fuzz_seconds} s, seed ${seed}"
  args=(--seconds "$fuzz_seconds" --seed "$seed" --findings "$findings")
  [[ -n "$targets" ]] && args+=(--target "$targets")
  target/release/vit-fuzz "${args[@]}" || status=$?
fi

if [[ "$run_config" -eq 1 ]]; then
  echo "== run_config (vit-train unit test): ${rc_seconds} s, seed ${seed}"
  VIT_FUZZ_SECONDS="$rc_seconds" VIT_FUZZ_SEED="$seed" VIT_FUZZ_FINDINGS="$PWD/$findings" \
    cargo test -p vit-train --bin vit-train -- --exact run_config::fuzz::fuzz_parse_never_panics --nocapture \
    || status=1
fi

if [[ "$status" -ne 0 ]]; then
  echo "== FINDINGS (exit status $status): see ${findings}/ and the output above" >&2
  exit 1
fi
echo "== no findings"
