#!/usr/bin/env bash
# One command to check vit-burn on a GPU: build, HF parity, a short real training run, every
# `vit-train bench` case; one Markdown table on stdout and in a file. Needs no network (except
# for the first `cuda` build, see below) and nothing but the Rust toolchain and python3 (standard
# library only, to write the training images).
#
#   scripts/gpu_check.sh [--device DEV] [--cuda] [--quick] [--cases LIST] [--out FILE]
#
#   --device DEV  the device every step runs on, as `run.device` spells it (default `wgpu`):
#                 wgpu, vulkan, vulkan:0, cuda:0, ... The build gets that backend's cargo feature.
#   --cuda        build the `cuda` feature too, and use `cuda:0` unless --device says otherwise.
#   --quick       a smaller training run and 1 warmup + 2 timed bench iterations (default 3 + 10);
#                 for slow devices (Mesa's software Vulkan) and smoke tests.
#   --cases LIST  only these bench cases (comma-separated names or prefixes: infer-vit-ti16,train);
#                 default: every case. On lavapipe use `--cases infer-vit-ti16`: there a ViT-B/16
#                 iteration takes minutes and a batch-64 training case over 20 minutes.
#   --out FILE    where the Markdown goes as well as stdout (default gpu_check.md, in the current
#                 directory).
#   FEATURES=wgpu,vulkan,...  (environment) the GPU features to build instead of the device's
#                 own. With `vulkan` compiled in, the `wgpu` device also compiles its kernels to
#                 SPIR-V on Vulkan adapters (CubeCL's AutoCompiler), not WGSL.
#
# Progress and logs go to stderr; stdout carries only the Markdown. Every step is timed; a failed
# step is named on stderr and marked FAILED in the table, the later steps still run (except after
# a failed build), and the exit status is 1.
#
# CUDA offline: Burn 0.22's CubeCL CUDA backend gets LLVM through `tracel-llvm-bundler`, whose
# build script downloads a bundle from GitHub unless it is already installed under
# ~/.local/share/tracel/tracel-llvm-<version>/ (one online build does that), or the archive and its
# checksums file sit in ~/.cache/tracel/ (this script then sets
# TRACEL_LLVM_BUNDLER_SKIP_CHECKSUM_DOWNLOAD=1). `wgpu` and `vulkan` build offline.
# Without a GPU, `--device wgpu` runs on Mesa's lavapipe (apt-get install mesa-vulkan-drivers
# libvulkan1 vulkan-tools); build it without `vulkan` (the default for `--device wgpu`): Debian 12's
# lavapipe crashes compiling Burn's SPIR-V matmul.
set -uo pipefail
caller_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { printf 'gpu_check: %s\n' "$*" >&2; exit 2; }
say() { printf '\n== gpu_check: %s\n' "$*" >&2; }

device="" cuda=0 quick=0 out="gpu_check.md" only=""
while (($#)); do
    case "$1" in
        --device) [[ $# -ge 2 ]] || die "--device needs a value"; device="$2"; shift 2 ;;
        --device=*) device="${1#*=}"; shift ;;
        --cuda) cuda=1; shift ;;
        --quick) quick=1; shift ;;
        --cases) [[ $# -ge 2 ]] || die "--cases needs a value"; only="$2"; shift 2 ;;
        --cases=*) only="${1#*=}"; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a value"; out="$2"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument \`$1\` (see --help)" ;;
    esac
done
[[ $out == /* ]] || out="$caller_dir/$out"
[[ -n "$device" ]] || { ((cuda)) && device="cuda:0" || device="wgpu"; }

backend="${device%%:*}"
case "$backend" in
    wgpu | vulkan | metal | cuda | rocm) ;;
    cpu | flex) backend=cpu ;;
    *) die "unknown device \`$device\`: expected wgpu[:...], vulkan[:...], metal, cuda:N, rocm:N or cpu" ;;
esac

# The cargo features: FEATURES, else the device's backend; plus cuda with --cuda.
default_features=$([[ $backend == cpu ]] || echo "$backend")
IFS=', ' read -r -a features <<<"${FEATURES-$default_features}"
((cuda)) && features+=(cuda)
mapfile -t features < <(printf '%s\n' "${features[@]}" | awk 'NF && !seen[$0]++')
has_cuda=0
for f in "${features[@]}"; do
    case "$f" in wgpu | vulkan | metal | cuda | rocm) ;; *) die "FEATURES: \`$f\` is not a GPU feature of vit-train" ;; esac
    [[ $f == cuda ]] && has_cuda=1
done
if [[ $backend != cpu ]] && ! printf '%s\n' "${features[@]}" | grep -qx "$backend"; then
    die "device \`$device\` needs the \`$backend\` feature, which FEATURES=${FEATURES:-} leaves out"
fi
cargo_features=()
for f in "${features[@]}"; do
    cargo_features+=("vit-train/$f")
    # vit-model's own backend features (its parity tests pick the device by VIT_TEST_DEVICE).
    case "$f" in wgpu | vulkan | cuda) cargo_features+=("vit-model/$f") ;; esac
done
feature_list=$(IFS=,; echo "${cargo_features[*]}")
cargo_args=(--release --locked -p vit-train -p vit-model)
[[ -n "$feature_list" ]] && cargo_args+=(--features "$feature_list")

if ((quick)); then warmup=1 iters=2; else warmup=3 iters=10; fi
bin="${CARGO_TARGET_DIR:-target}/release/vit-train"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || die "cannot make a work directory"
failed=()
rows=()

# `| a | b |` from the arguments.
row() {
    local s="|" c
    for c in "$@"; do s+=" $c |"; done
    rows+=("$s")
}
elapsed() { echo "$(($(date +%s) - $1)) s"; }
# A field of a one-line JSON object (numbers and strings; null → empty).
json_field() { sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[-0-9.eE+]*\).*/\1/p" <<<"$1" | tr -d '"'; }
fmt() { [[ -n "$1" ]] && printf "%.${2:-1}f" "$1" || echo "n/a"; }

# ---- the GPU, its driver --------------------------------------------------------------------
gpu="unknown" driver="unknown" smi_index=""
if [[ $backend == cpu ]]; then
    gpu="none (Burn's CPU backend)" driver="n/a"
elif command -v nvidia-smi >/dev/null 2>&1 && smi=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total \
    --format=csv,noheader 2>/dev/null) && [[ -n "$smi" ]]; then
    want=""
    [[ $backend == cuda ]] && want="${device#cuda}" && want="${want#:}" && want="${want:-0}"
    [[ -z "$want" && $(wc -l <<<"$smi") -eq 1 ]] && want=$(cut -d, -f1 <<<"$smi" | tr -d ' ')
    line=$(awk -F', ' -v w="$want" 'w == "" || $1 == w' <<<"$smi")
    gpu=$(awk -F', ' '{ printf "%s%s (%s)", (NR > 1 ? "; " : ""), $2, $4 }' <<<"$line")
    driver=$(awk -F', ' '{print $3}' <<<"$line" | sort -u | paste -sd/)
    cuda_version=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)
    [[ -n "$cuda_version" ]] && driver="$driver, CUDA $cuda_version"
    smi_index="$want"
elif command -v vulkaninfo >/dev/null 2>&1 && vk=$(vulkaninfo --summary 2>/dev/null) && [[ -n "$vk" ]]; then
    gpu=$(sed -n 's/^[[:space:]]*deviceName *= *//p' <<<"$vk" | paste -sd';' | sed 's/;/; /g')
    driver=$(sed -n 's/^[[:space:]]*driverInfo *= *//p' <<<"$vk" | sort -u | paste -sd/)
    [[ -n "$driver" ]] || driver=$(sed -n 's/^[[:space:]]*driverVersion *= *//p' <<<"$vk" | sort -u | paste -sd/)
    gpu="${gpu:-unknown} (Vulkan)"
else
    say "neither nvidia-smi nor vulkaninfo found: the table names no GPU (apt-get install vulkan-tools)"
fi

# Peak GPU memory while a command runs (nvidia-smi only): the largest rise of memory.used over
# its value before the command, MiB, on the device's GPU (or any GPU when that is not known).
gpu_mem_start() {
    sampler_pid="" sampler_file="$work/gpumem.$1"
    command -v nvidia-smi >/dev/null 2>&1 || return 0
    nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits >"$sampler_file.base" 2>/dev/null || return 0
    nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 100 >"$sampler_file" 2>/dev/null &
    sampler_pid=$!
}
gpu_mem_stop() {
    [[ -n "$sampler_pid" ]] || { echo ""; return; }
    kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null
    awk -F', *' -v w="$smi_index" 'FNR == NR { base[$1] = $2; next }
        (w == "" || $1 == w) && $2 - base[$1] > peak { peak = $2 - base[$1] }
        END { if (peak != "") print peak + 0 }' "$sampler_file.base" "$sampler_file"
}

# ---- 1. build ---------------------------------------------------------------------------------
say "1/4 build: cargo build ${cargo_args[*]}"
if ((has_cuda)); then
    llvm_version=$(awk '/^name = "tracel-llvm-bundler"/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
    llvm_dir="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-$llvm_version"
    llvm_cache="$HOME/.cache/tracel/tracel-llvm-$llvm_version-linux-x64"
    if [[ -e "$llvm_dir/.tracel-llvm-installed" ]]; then
        echo "cuda: the LLVM bundle is installed ($llvm_dir)" >&2
    elif [[ -f "$llvm_cache.tar.xz" && -f "$llvm_cache.checksums.json" ]]; then
        echo "cuda: installing the LLVM bundle from $llvm_cache.tar.xz (no download)" >&2
        export TRACEL_LLVM_BUNDLER_SKIP_CHECKSUM_DOWNLOAD=1
    else
        echo "cuda: no LLVM bundle in $llvm_dir: tracel-llvm-bundler will download one (needs network)" >&2
    fi
fi
t=$(date +%s)
cargo build "${cargo_args[@]}" 2>&1 | tee "$work/build.log" >&2
rc=${PIPESTATUS[0]}
if ((rc != 0)); then
    if ((has_cuda)) && grep -qiE 'tracel.llvm|lookup address|dns error|failed to connect|github.com/tracel-ai' "$work/build.log"; then
        printf '\ngpu_check: FAILED step "build": the cuda feature needs an LLVM bundle that tracel-llvm-bundler\n' >&2
        printf '  downloads at build time, and it could not (offline?). Build once with network access, or put\n' >&2
        printf '  %s.tar.xz and %s.checksums.json\n' "${llvm_cache:-~/.cache/tracel/tracel-llvm-VERSION-linux-x64}" "${llvm_cache:-...}" >&2
        printf '  there (from https://github.com/tracel-ai/tracel-llvm/releases), or check without cuda: --device vulkan:0\n' >&2
    else
        printf '\ngpu_check: FAILED step "build" (cargo exit %s); log: %s\n' "$rc" "$work/build.log" >&2
    fi
    exit 1
fi
build_time=$(elapsed "$t")
# A copy of the binary: target/ may be shared, and another build there (other features) would
# replace target/release/vit-train under the later steps. `forward` makes the device before
# anything else, so a missing backend shows at once.
cp "$bin" "$work/vit-train" || { printf 'gpu_check: FAILED step "build": cannot copy %s\n' "$bin" >&2; exit 1; }
bin="$work/vit-train"
if HF_HUB_OFFLINE=1 "$bin" forward --device "$device" --model "$work/none" --inputs "$work/none" --output "$work/none" 2>&1 |
    grep -q 'which this binary was built without'; then
    printf 'gpu_check: FAILED step "build": %s has no %s backend (was it rebuilt by someone else meanwhile?)\n' "$bin" "$backend" >&2
    exit 1
fi
row "build (release; ${features[*]:-no GPU features})" "ok" "" "" "" "" "$build_time"

# ---- 2. HF parity -----------------------------------------------------------------------------
say "2/4 parity with transformers on $device"
t=$(date +%s)
parity_env=() parity_note=""
case "$backend" in
    wgpu | vulkan) parity_env=(VIT_TEST_DEVICE="$backend")
        [[ "$device" != "$backend" ]] && parity_note=" (the parity tests take the backend's default adapter, not $device)" ;;
    cuda) parity_env=(VIT_TEST_DEVICE=cuda)
        n="${device#cuda}"; n="${n#:}"
        if [[ -n "$n" && "$n" != 0 ]]; then
            [[ -z "${CUDA_VISIBLE_DEVICES:-}" ]] && parity_env+=(CUDA_VISIBLE_DEVICES="$n") ||
                parity_note=" (CUDA_VISIBLE_DEVICES is set: ran on its device 0)"
        fi ;;
    cpu) parity_env=(VIT_TEST_DEVICE=cpu) ;;
esac
if [[ $backend == metal || $backend == rocm ]]; then
    row "parity (HF transformers)" "skipped: the parity tests have no $backend device" "" "" "" "" ""
else
    env "${parity_env[@]}" cargo test "${cargo_args[@]}" --test parity -- --nocapture 2>&1 | tee "$work/parity.log" >&2
    rc=${PIPESTATUS[0]}
    worst=$(sed -n 's/^\([a-z_]*\): [0-9]* tensors, worst max abs diff \(.*\)$/\1 \2/p' "$work/parity.log" | sort |
        awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
    passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$work/parity.log" | head -1)
    if ((rc == 0)); then
        row "parity (HF transformers)" "ok: ${passed:-all} tests; worst max abs diff $worst$parity_note" "" "" "" "" "$(elapsed "$t")"
    else
        failed+=(parity)
        printf '\ngpu_check: FAILED step "parity" (log: %s):\n' "$work/parity.log" >&2
        grep -E '^test .* FAILED|panicked|max abs diff' "$work/parity.log" | tail -20 >&2
        bad=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$work/parity.log" | paste -sd, | sed 's/,/, /g')
        row "parity (HF transformers)" "**FAILED**${bad:+: $bad} (see $work/parity.log); passed: ${worst:-none}" "" "" "" "" "$(elapsed "$t")"
    fi
fi

# ---- 3. a short training run ------------------------------------------------------------------
if ((quick)); then per_class=12 steps=6 batch=16 model="hidden_size = 48
num_hidden_layers = 2
num_attention_heads = 4
intermediate_size = 96
patch_size = 8"
else per_class=200 steps=100 batch=64 model="num_hidden_layers = 6
patch_size = 4"
fi
say "3/4 training: $steps steps on $device ($((3 * per_class)) synthetic 32x32 images)"
t=$(date +%s)
data="$work/data" run="$work/run"
train_ok=1
# Three classes (stripes across, stripes down, a checkerboard) in random colours with noise, as the
# vit-train end-to-end tests make them; PNGs written with zlib alone.
if ! python3 - "$data" "$per_class" <<'EOF' 2>"$work/data.log"; then
import os, random, struct, sys, zlib
root, per_class = sys.argv[1], int(sys.argv[2])
def png(path, w, h, rgb):
    raw = b"".join(b"\0" + bytes(rgb[y * w * 3:(y + 1) * w * 3]) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for c, name in enumerate(["checker", "horizontal", "vertical"]):
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(per_class):
        r = random.Random(c * 100003 + i)
        colour, phase, px = [r.randrange(60, 250) for _ in range(3)], r.randrange(8), []
        for y in range(32):
            for x in range(32):
                on = [((x + phase) // 4 + (y + phase) // 4) % 2 == 0, ((y + phase) // 4) % 2 == 0,
                      ((x + phase) // 4) % 2 == 0][c]
                noise = r.randrange(40) - 20
                px += [min(255, max(0, (v if on else 20) + noise)) for v in colour]
        png(os.path.join(root, name, f"{i:04}.png"), 32, 32, px)
EOF
    train_ok=0
    printf '\ngpu_check: FAILED step "train": writing the training images with python3: %s\n' "$(tail -3 "$work/data.log")" >&2
fi
cat >"$work/train.toml" <<EOF
task = "classification"
[model]
preset = "vit-tiny"
$model
[data]
dataset = "imagefolder"
path = "$data"
image_size = 32
augmentation = "pad-crop-flip"
validation_split = 0.25
batch_size = $batch
[optimizer]
lr = 2e-3
weight_decay = 0.05
warmup_ratio = 0.1
schedule = "cosine"
[run]
epochs = 1
max_steps = $steps
eval_every = $((steps / 2))
seed = 7
keep_last = 1
output_dir = "$run"
log_every = $(((steps + 9) / 10))
device = "$device"
EOF
train_gpu=""
if ((train_ok)); then
    gpu_mem_start train
    "$bin" --config "$work/train.toml" 2>&1 | tee "$work/train.log" >&2
    rc=${PIPESTATUS[0]}
    train_gpu=$(gpu_mem_stop)
    metrics="$run/metrics.csv"
    if ((rc != 0)); then
        train_ok=0
        printf '\ngpu_check: FAILED step "train": vit-train exited %s (log: %s):\n' "$rc" "$work/train.log" >&2
        tail -15 "$work/train.log" >&2
    elif [[ ! -f "$metrics" || ! -f "$run/best/model.safetensors" ]]; then
        train_ok=0
        printf '\ngpu_check: FAILED step "train": the run left no %s or best/model.safetensors\n' "$metrics" >&2
    fi
fi
train_time=$(elapsed "$t")
if ((train_ok)); then
    # metrics.csv: step,epoch,split,loss,accuracy,top5,lr,images_per_sec
    first=$(awk -F, '$3 == "train" { print $4; exit }' "$metrics")
    last_train=$(awk -F, '$3 == "train" { l = $0 } END { print l }' "$metrics")
    valid=$(awk -F, '$3 == "valid" { l = $0 } END { print l }' "$metrics")
    ips=$(cut -d, -f8 <<<"$last_train")
    number='^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$'
    if ! [[ $(cut -d, -f4 <<<"$valid") =~ $number && $first =~ $number ]]; then
        train_ok=0
        printf '\ngpu_check: FAILED step "train": no finite validation loss in %s\n' "$metrics" >&2
    else
        row "train ($steps steps, batch $batch)" \
            "ok: loss $(fmt "$first" 3) → $(fmt "$(cut -d, -f4 <<<"$last_train")" 3), valid loss $(fmt "$(cut -d, -f4 <<<"$valid")" 3), accuracy $(fmt "$(cut -d, -f5 <<<"$valid")" 1)%" \
            "$(fmt "$ips")" "" "" "$(fmt "$train_gpu" 0)" "$train_time"
    fi
fi
if ((!train_ok)); then
    failed+=(train)
    row "train ($steps steps, batch $batch)" "**FAILED** (see $work/train.log)" "" "" "" "" "$train_time"
fi

# ---- 4. bench ---------------------------------------------------------------------------------
say "4/4 bench on $device: $warmup warmup + $iters timed iterations per case"
# The case names, from bench's own error message for an unknown case.
cases=$("$bin" bench --case '?' 2>&1 | sed -n 's/.*cases (or prefixes of them): //p' | tr -d ',')
if [[ -z "$cases" ]]; then
    failed+=(bench)
    printf '\ngpu_check: FAILED step "bench": could not list the bench cases of %s\n' "$bin" >&2
    row "bench" "**FAILED**: no case list" "" "" "" "" ""
fi
if [[ -n "$only" && -n "$cases" ]]; then
    picked=""
    for want in ${only//,/ }; do
        hits=$(tr ' ' '\n' <<<"$cases" | awk -v w="$want" 'NF && ($0 == w || index($0, w) == 1)')
        [[ -n "$hits" ]] || { printf 'gpu_check: --cases: no bench case is or starts with "%s" (cases: %s)\n' "$want" "$cases" >&2; failed+=("bench $want"); }
        picked+=" $hits"
    done
    cases=$(tr ' ' '\n' <<<"$picked" | awk 'NF && !seen[$0]++' | paste -sd' ')
fi
for case in $cases; do
    t=$(date +%s)
    gpu_mem_start "$case"
    "$bin" bench --device "$device" --case "$case" --json --warmup "$warmup" --iters "$iters" \
        >"$work/bench.$case.json" 2>"$work/bench.$case.log"
    rc=$?
    peak_gpu=$(gpu_mem_stop)
    line=$(grep '^{' "$work/bench.$case.json" | tail -1)
    ips=$(json_field "$line" images_per_s)
    if ((rc != 0)) || [[ -z "$ips" ]]; then
        failed+=("bench $case")
        printf '\ngpu_check: FAILED step "bench %s" (exit %s; log: %s):\n' "$case" "$rc" "$work/bench.$case.log" >&2
        tail -8 "$work/bench.$case.log" >&2
        row "bench $case" "**FAILED**" "" "" "" "" "$(elapsed "$t")"
        continue
    fi
    printf '  %-26s %9s img/s\n' "$case" "$(fmt "$ips")" >&2
    row "bench $case" "ok (batch $(json_field "$line" batch))" "$(fmt "$ips")" "$(fmt "$(json_field "$line" ms_per_iter_median)")" \
        "$(fmt "$(json_field "$line" peak_rss_mib)" 0)" "$(fmt "$peak_gpu" 0)" "$(elapsed "$t")"
done

# ---- the table --------------------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
{
    echo "## GPU check: vit-burn $commit on \`$device\`"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(hostname); $(nproc) CPUs; $(uname -sr)"
    echo "- device: \`$device\`; GPU: $gpu; driver: $driver"
    echo "- build: \`cargo build ${cargo_args[*]}\`; $(rustc --version 2>/dev/null)"
    echo "- mode: $( ((quick)) && echo quick || echo full); bench: $warmup warmup + $iters timed iterations per case, median, each case in its own process${only:+; cases: $only}"
    echo "- host MiB: the process's peak RSS (VmHWM); GPU MiB: the peak rise of nvidia-smi's memory.used during the step (n/a without nvidia-smi); img/s of train: metrics.csv's last train row"
    echo
    echo "| step | result | img/s | ms/iter | host MiB | GPU MiB | time | device | GPU | driver |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
    for r in "${rows[@]}"; do
        echo "$r \`$device\` | $gpu | $driver |"
    done
    echo
    if ((${#failed[@]})); then
        echo "FAILED: ${failed[*]} (logs in $work)"
    else
        echo "All steps passed (logs in $work)."
    fi
} >"$work/table.md"
cat "$work/table.md"
if ! cp "$work/table.md" "$out.tmp.$$" || ! mv "$out.tmp.$$" "$out"; then
    printf 'gpu_check: cannot write %s\n' "$out" >&2
    exit 1
fi
say "wrote $out"
if ((${#failed[@]})); then
    list=$(printf '%s, ' "${failed[@]}")
    printf 'gpu_check: FAILED steps: %s\n' "${list%, }" >&2
    exit 1
fi
