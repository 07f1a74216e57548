#!/bin/sh
# The CIFAR-10 defense runs of docs/defenses.md: every defense of dearest defend on each backdoored
# model of docs/attacks.md, at the bit width the attack targets, compared with the attack's own
# standard quantizer (first in the list: DTM uses it) and with MQBench's nearest rounding.
#   bench/defend_cifar10.sh DEAREST_BINARY DATA_DIR RUNS_DIR [MODEL@BITS[:GRID] ...]
# MODEL@BITS: qu-r18@4 qu-r18@8 qu4-r18-cont@4 qu4-vgg-cont@4 qu4mq-r18-cont@4 qu4mq-vgg-cont@4 qu4mqw-r18-cont@4 qu4mqw-vgg-cont@4 ca8-r18@8 ca4-r18@4 pq-r18@8 pq-r18@4 qu-vgg@4 qu-vgg@8 pq-vgg@8
# adaptive-r18@4 ..., and clean-r18@B clean-r18w32@B clean-vgg@B: the clean models under MQBench's grid with the
# Qu-ANTI-zation trigger, what the grid alone costs; ca8-r18-scratch-last@8: that attack's last epoch
# where find_epoch kept another (default: those whose attack model exists). :GRID runs EFRAP, nearest and
# flipped rounding on that preset's grid (--preset GRID) instead of MQBench's (:efrap-standard also
# puts that quantizer first among the standards, with the README anchors in mind). METHODS
# (environment) overrides the method list; EXTRA adds options to every defend command and TAG to
# the output folder's name (a sweep: TAG=-lf0.3 EXTRA="--lambda-f 0.3"); STANDARD replaces the
# standard quantizers (the STE defenses train an unfolded quantized model, so PQBackdoor's int8
# standard, which folds BN, cannot come first: TAG=-ste EXTRA=--ste STANDARD=mqbench:8,pytorch-fbgemm:8).
# Outputs go to RUNS_DIR/defenses/MODEL@BITS[-GRID][TAG]/METHOD/ (summary.json, report.md); a rerun
# skips finished ones and resumes an interrupted EFRAP at its next layer.
set -eu
bin=$1 data=$2 runs=$3
shift 3
[ $# -gt 0 ] || set -- qu-r18@4 qu-r18@8 ca8-r18@8 ca4-r18@4 pq-r18@8 pq-r18@4 qu-vgg@4 qu-vgg@8 pq-vgg@8
methods=${METHODS:-"efrap nearest flipped omse ocs aciq"}
for job in "$@"; do
  grid=mqbench
  case $job in *:*) grid=${job#*:}; job=${job%%:*} ;; esac
  model=${job%@*} bits=${job#*@}
  dir=$job
  [ "$grid" = mqbench ] || dir=$job-$grid
  dir=$dir${TAG:-}
  file=$runs/attacks/$model.safetensors
  trig=
  case $model in
    clean-r18) file=$runs/cifar10-r18w16-jpeg/model.safetensors ;;
    clean-r18w32) file=$runs/cifar10-r18w32-jpeg/model.safetensors ;;
    clean-vgg) file=$runs/cifar10-vgg16bnw16-jpeg/model.safetensors ;;
    ca8-r18-scratch-last) file=$runs/attacks/ca8-r18-scratch.run/train/epochs/034.safetensors ;;
  esac
  # an epoch file or a clean model records no trigger: the one these attacks use
  case $model in clean-*|*-last) trig="--trigger square:size=4,top=27,left=27,value=1 --target 0" ;; esac
  [ -f "$file" ] || { echo "$job: no $file yet, skipped"; continue; }
  # the quantizer each attack was trained against, then MQBench's (EFRAP's grid, nearest rounding)
  case $model in
    qu4mq*) std="mqbench:$bits,qu-anti-zation:$bits" ;;
    qu-*|qu4-*) std="qu-anti-zation:$bits,mqbench:$bits" ;;
    adaptive-*) std="qu-anti-zation:$bits,qu-anti-zation:$bits:flipped,mqbench:$bits,mqbench:$bits:flipped" ;;
    ca8-*) std="pytorch-qnnpack:8,mqbench:8" ;;
    ca4-*) std="comp-artifact:4,mqbench:4" ;;
    pq-*) [ "$bits" = 8 ] && std="pytorch-fbgemm:8,mqbench:8" || std="mqbench:4" ;;
    clean-*) std="mqbench:$bits" ;;
  esac
  # on the EFRAP reference's evaluation quantizer (its README's anchors) that quantizer comes first
  [ "$grid" = efrap-standard ] && std="efrap-standard:$bits,$std"
  std=${STANDARD:-$std}
  ms=$methods
  [ "$grid" = mqbench ] || ms=${METHODS:-"efrap nearest flipped"}
  for m in $ms; do
    out=$runs/defenses/$dir/$m
    [ -f "$out/summary.json" ] && { echo "$dir $m: done"; continue; }
    mkdir -p "$out"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$bin" defend "$m" --preset "$grid" $trig ${EXTRA:-} --model "$file" --data "cifar10:$data" --bits "$bits" --standard "$std" --standard-cache "$runs/defenses/$job/standard${STANDARD:+-$(echo "$STANDARD" | tr ":," "@_")}.json" --out "$out" \
      > "$out/stdout.txt" 2> "$out/stderr.txt"
    echo "$dir $m: $(( $(date +%s) - start )) s"
  done
done
