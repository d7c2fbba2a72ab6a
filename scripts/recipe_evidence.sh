#!/usr/bin/env bash
# Does the DeiT/timm recipe generalise better on small data? A small ViT trained from scratch on
# real handwritten digits (scikit-learn's copy of the UCI "Optical Recognition of Handwritten
# Digits" set: 1,797 8x8 scans shipped inside the scikit-learn package, so no download), once with
# a plain recipe and once with the full one, at the same epoch budget, for several seeds; the
# held-out test accuracy (the `test` row of metrics.csv, the exported model on 539 images never
# seen in training or validation) of each, and their means.
#
#   bash scripts/recipe_evidence.sh [--seeds "1 2 3"] [--epochs 60] [--recipes "plain full light"]
#                                   [--precisions "f32 bf16 f16"] [--out runs/evidence]
#
# --precisions trains each recipe and seed at each `run.precision` (default f32 only): does mixed
# precision reach float32's accuracy on the same data and seed?
#
# Environment: VENV (a Python venv with scikit-learn and Pillow, created in .venv-evidence when
# absent), CARGO_TARGET_DIR (honoured when locating target/release/vit-train).
#
# plain: crop-free resize to 32 px, no augmentation, no regularisation (AdamW, cosine).
# full:  RandomResizedCrop (scale 0.35-1, no flip: digits are not mirror-symmetric), RandAugment
#        rand-m9-mstd0.5-inc1, random erasing 0.25, Mixup 0.8 + CutMix 1.0, label smoothing 0.1,
#        drop path 0.1; the same model, optimizer, schedule and epochs.
# light: the same at the strength small-image recipes use: crop scale 0.7-1, rand-m5-mstd0.5-inc1,
#        Mixup 0.2 without CutMix, no erasing, label smoothing 0.1, drop path 0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SEEDS="1 2 3"
EPOCHS=60
RECIPES="plain full light"
PRECISIONS="f32"
OUT=runs/evidence
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) SEEDS="$2"; shift 2 ;;
        --epochs) EPOCHS="$2"; shift 2 ;;
        --recipes) RECIPES="$2"; shift 2 ;;
        --precisions) PRECISIONS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

VENV="${VENV:-.venv-evidence}"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import sklearn, PIL" 2>/dev/null || "$VENV/bin/python" -m pip install --quiet scikit-learn pillow

mkdir -p "$OUT"
[[ -d "$OUT/digits/train" ]] || "$VENV/bin/python" scripts/export_digits.py "$OUT/digits"
cargo build --release --locked -p vit-train
BIN="${CARGO_TARGET_DIR:-target}/release/vit-train"

config() { # recipe seed precision name
    local recipe=$1 seed=$2 precision=$3 name=$4
    cat <<TOML
task = "classification"
[model]
preset = "vit-tiny"
patch_size = 4
hidden_size = 96
num_hidden_layers = 4
num_attention_heads = 4
intermediate_size = 192
num_channels = 1
$([[ $recipe != plain ]] && echo 'drop_path_rate = 0.1')
[data]
dataset = "imagefolder"
path = "$OUT/digits/train"
test_dir = "$OUT/digits/test"
image_size = 32
validation_split = 0.1
batch_size = 64
resample = "bilinear"
TOML
    if [[ $recipe == light ]]; then
        cat <<TOML
augmentation = "random-resized-crop"
crop_scale = [0.7, 1.0]
hflip = 0.0
auto_augment = "rand-m5-mstd0.5-inc1"
mixup_alpha = 0.2
TOML
    elif [[ $recipe == full ]]; then
        cat <<TOML
augmentation = "random-resized-crop"
crop_scale = [0.35, 1.0]
hflip = 0.0
auto_augment = "rand-m9-mstd0.5-inc1"
random_erasing = 0.25
mixup_alpha = 0.8
cutmix_alpha = 1.0
TOML
    else
        echo 'augmentation = "none"'
    fi
    cat <<TOML
[optimizer]
lr = 1e-3
weight_decay = 0.05
warmup_ratio = 0.05
schedule = "cosine"
$([[ $recipe != plain ]] && echo 'label_smoothing = 0.1')
[run]
epochs = $EPOCHS
seed = $seed
precision = "$precision"
keep_last = 1
log_every = 1000
output_dir = "$OUT/$name"
TOML
}

declare -A ACC
[[ -f "$OUT/results.md" ]] || printf '| recipe | precision | seed | test accuracy %% | best valid accuracy %% | wall s |\n| --- | --- | --- | ---: | ---: | ---: |\n' > "$OUT/results.md"
for recipe in $RECIPES; do
    for precision in $PRECISIONS; do
        for seed in $SEEDS; do
            name="$recipe-$seed"
            [[ $precision != f32 ]] && name="$recipe-$precision-$seed"
            config "$recipe" "$seed" "$precision" "$name" > "$OUT/$name.toml"
            start=$(date +%s)
            "$BIN" --config "$OUT/$name.toml" --overwrite > "$OUT/$name.log" 2>&1 \
                || { echo "run $name failed: see $OUT/$name.log" >&2; exit 1; }
            wall=$(( $(date +%s) - start ))
            csv="$OUT/$name/metrics.csv"
            test=$(awk -F, '$3 == "test" { a = $5 } END { print a }' "$csv")
            valid=$(awk -F, '$3 == "valid" && $5 > b { b = $5 } END { print b }' "$csv")
            ACC[$recipe $precision]+="$test "
            printf '| %s | %s | %s | %s | %s | %s |\n' "$recipe" "$precision" "$seed" "$test" "$valid" "$wall" \
                | tee -a "$OUT/results.md"
        done
    done
done
mean() { echo "$1" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF }'; }
{
    echo
    for recipe in $RECIPES; do
        for precision in $PRECISIONS; do
            echo "mean test accuracy of $recipe in $precision over seeds $SEEDS, $EPOCHS epochs: $(mean "${ACC[$recipe $precision]}")%"
        done
    done
} | tee -a "$OUT/results.md"
