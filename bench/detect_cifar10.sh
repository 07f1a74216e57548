#!/bin/sh
# The CIFAR-10 detector runs of docs/defenses.md: Neural Cleanse, STRIP and ABS on a model in float
# and under its victim's quantizer (ABS with its reference settings for CIFAR).
#   bench/detect_cifar10.sh DEAREST_BINARY DATA_DIR RUNS_DIR [MODEL:QUANTIZER ...]
# MODEL is runs/attacks/MODEL.safetensors (default: badnets-r18:pytorch-fbgemm:8 pq-r18:pytorch-fbgemm:8).
# Neural Cleanse runs 100 steps of 256 images per label (the reference: 1000 of 1000 images, about
# 40 times longer here); NC (environment) replaces those options.
# Outputs: RUNS_DIR/detect/MODEL/{float,PRESET@BITS}/{neural-cleanse,strip,abs}/ (summary.json, figures);
# finished ones are skipped.
set -eu
bin=$1 data=$2 runs=$3
shift 3
[ $# -gt 0 ] || set -- badnets-r18:pytorch-fbgemm:8 pq-r18:pytorch-fbgemm:8
nc=${NC:-"--nc-steps 100 --nc-images 256"}
for job in "$@"; do
  model=${job%%:*} q=${job#*:}
  file=$runs/attacks/$model.safetensors
  [ -f "$file" ] || { echo "$job: no $file yet, skipped"; continue; }
  for where in float "$q"; do
    qopt=""
    [ "$where" = float ] || qopt="--quantize $where"
    for m in strip neural-cleanse abs; do
      out=$runs/detect/$model/$(echo "$where" | sed 's/:\([0-9]*\)$/@\1/')/$m
      [ -f "$out/summary.json" ] && { echo "$model $where $m: done"; continue; }
      mkdir -p "$out"
      start=$(date +%s)
      extra=""
      [ $m = neural-cleanse ] && extra=$nc
      # shellcheck disable=SC2086
      "$bin" detect $m --model "$file" --data "cifar10:$data" $qopt $extra --out "$out" > "$out/stdout.txt" 2> "$out/stderr.txt"
      echo "$model $where $m: $(( $(date +%s) - start )) s"
    done
  done
done
