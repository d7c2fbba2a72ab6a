#!/usr/bin/env bash
# Fuzzes the readers of user files (safetensors, model.safetensors.index.json, config.json,
# preprocessor_config.json, images, CIFAR records, and the run-config TOML) for a bounded time.
#
#   scripts/fuzz.sh                      # 60 s in all
#   FUZZ_SECONDS=600 scripts/fuzz.sh     # longer
#   FUZZ_SEED=7 FUZZ_TARGETS=image,config scripts/fuzz.sh
#
# The time is split evenly over the targets (`target/release/vit-fuzz --list`; the run-config
# parser is the `run_config` target, with its `--set` overrides in the input). The readers, the
# run-config parser, and the decoders and parsers they rely on, are built in release with overflow
# checks on, so an arithmetic overflow is a panic.
# Findings are saved to fuzz-findings/<target>-<hash>.bin (replay one with
# `target/release/vit-fuzz --replay FILE`), and the script exits non-zero if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
seed="${FUZZ_SEED:-$(date +%s)}"
targets="${FUZZ_TARGETS:-}"
findings="${FUZZ_FINDINGS:-fuzz-findings}"

# Versions are pinned where Cargo.lock holds more than one; cargo silently ignores a spec that
# matches no package, so check a changed entry with `cargo pkgid SPEC`.
checked=(vit-model vit-data vit-train vit-fuzz image png gif tiff zune-jpeg zune-core image-webp qoi exr fdeflate weezl fax
  "safetensors@0.8.0" "toml@0.9.12" toml_parser "toml_datetime@0.7.5" toml_writer serde_spanned "winnow@0.7.15")
config=()
for p in "${checked[@]}"; do
  config+=(--config "profile.release.package.\"$p\".overflow-checks=true")
done

echo "== building vit-fuzz (release, overflow checks on)"
cargo build --release -p vit-fuzz "${config[@]}"

echo "== vit-fuzz: ${seconds} s, seed ${seed}"
args=(--seconds "$seconds" --seed "$seed" --findings "$findings")
[[ -n "$targets" ]] && args+=(--target "$targets")
status=0
target/release/vit-fuzz "${args[@]}" || status=$?

if [[ "$status" -ne 0 ]]; then
  echo "== FINDINGS (exit status $status): see ${findings}/ and the output above" >&2
  exit 1
fi
echo "== no findings"
