#!/usr/bin/env bash
# The README's keras.applications compression demo, end to end (from the repository's root):
#   results/compress_mobilenetv2/run.sh [RUNS_DIR]        (default RUNS_DIR: runs/compress_mobilenetv2)
# 1. a float MobileNetV2 (alpha 0.35, 32x32, weights=None) trained with plain Keras on the CIFAR-10 subset
#    (train_float.py; skipped when RUNS_DIR/float/mobilenetv2.keras exists);
# 2. nce-tf compress to half its MACs at W8A8 (default search and fine-tuning schedule);
# 3. the small outputs copied here (no model binaries).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-runs/compress_mobilenetv2}
HERE=results/compress_mobilenetv2
DATA=../shared/data/cifar10-subset/cifar10_subset.npz
export TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-1}
if [ ! -f "$RUNS/float/mobilenetv2.keras" ]; then
    python "$HERE/train_float.py" --out="$RUNS/float" --data="$DATA" --epochs=60 2>&1 | tee "$RUNS/float.log"
fi
/usr/bin/time -v nce-tf compress --trained="$RUNS/float/mobilenetv2.keras" --dataset="npz:$DATA" \
    --flops_ratio=0.5 --w_bits=8 --a_bits=8 --workdir="$RUNS/compress" 2>&1 | tee "$RUNS/compress.log"
cp "$RUNS/float/train_metrics.json" "$RUNS/compress/compress.json" "$RUNS/compress/compress_config.json" \
    "$RUNS/compress/report.md" "$HERE/"
cp "$RUNS/compress/export/model_card.json" "$HERE/export_model_card.json"
cp "$RUNS/compress/search/arch.json" "$HERE/search_arch.json"
cp "$RUNS/compress/finetune/metrics.json" "$HERE/finetune_metrics.json"
grep '^nce-tf: ' "$RUNS/compress.log" > "$HERE/compress_printed.txt"
python "$HERE/tflite_accuracy.py" "$RUNS"
