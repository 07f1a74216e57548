#!/bin/sh
# Quantizes trained CIFAR-10 models under several presets and measures, for docs/quant.md:
# float and quantized top-1 on the whole test set, calibration time, and the integer-only model
# against the emulation on the first 2,000 test images (both requantizations).
#   bench/quant_cifar10.sh DEAREST_BINARY DATA_DIR OUT_DIR MODEL.safetensors [MODEL ...]
set -eu
bin=$1 data=$2 out=$3
shift 3
mkdir -p "$out"
for model in "$@"; do
  name=$(basename "$(dirname "$model")")
  for cfg in "mqbench 4" "mqbench 8" "tflite-int8 8" "pytorch-fbgemm 8" "qu-anti-zation 8" "qu-anti-zation 4"; do
    set -- $cfg
    dir="$out/$name-$1-w$2"
    "$bin" quantize --model "$model" --data "cifar10:$data" --preset "$1" --bits "$2" --out "$dir" > /dev/null 2> "$dir.log" || { cat "$dir.log"; exit 1; }
    printf '%s %s W%s: ' "$name" "$1" "$2"
    grep -E '"(float_top1|quantized_top1|calibration_seconds)"' "$dir/summary.json" | tr -d '\n '; echo
  done
  for rq in gemmlowp single; do
    "$bin" audit --quantized "$out/$name-tflite-int8-w8/quantized.safetensors" --data "cifar10:$data" --images 2000 \
      --requant $rq > "$out/$name-tflite-int8-w8.integer-$rq.txt"
    printf '%s tflite-int8 W8 integer (%s): ' "$name" "$rq"
    grep 'integer-only' "$out/$name-tflite-int8-w8.integer-$rq.txt"
  done
done
