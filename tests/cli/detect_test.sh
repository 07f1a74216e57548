#!/bin/sh
# dearest detect from the command line, on the synthetic set in seconds: STRIP, Neural Cleanse and
# ABS on a float model and under a quantizer write their summaries and figures; bad options are clear
# errors.
#   tests/cli/detect_test.sh DEAREST_BINARY
set -eu
bin=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_error() {
  want=$1; shift
  if "$bin" "$@" > "$t/out" 2> "$t/err"; then fail "accepted: $*"; fi
  grep -qF -- "$want" "$t/err" || { cat "$t/err" >&2; fail "error without \"$want\": $*"; }
}
"$bin" attack badnets --model resnet18:width=2 --data synthetic:512 --set epochs=1 --set max-steps=2 --set batch=32 \
  --set eval-images=16 --set epoch-quantizers=qu-anti-zation:8 --set final-quantizers=qu-anti-zation:8 \
  --skip-start-verdict --quiet --out "$t/bd.safetensors" > /dev/null 2>&1
m="--model $t/bd.safetensors --data synthetic:512 --quiet"
# shellcheck disable=SC2086
"$bin" detect strip $m --strip-inputs 10 --strip-overlays 8 --out "$t/strip" > /dev/null
for key in '"far"' '"threshold"' '"flagged"' '"as": "float"'; do
  grep -qF "$key" "$t/strip/summary.json" || fail "strip: no $key"
done
[ -s "$t/strip/entropy.svg" ] || fail "strip wrote no histogram"
# shellcheck disable=SC2086
"$bin" detect neural-cleanse $m --nc-steps 2 --nc-images 32 --quantize qu-anti-zation:8 --out "$t/nc" > /dev/null
for key in '"model_anomaly_index"' '"flagged_labels"' '"as": "qu-anti-zation@8"'; do
  grep -qF "$key" "$t/nc/summary.json" || fail "neural-cleanse: no $key"
done
[ "$(ls "$t/nc/masks" | wc -l)" -eq 30 ] || fail "neural-cleanse: expected mask, pattern and fusion PNGs for 10 labels"
[ -s "$t/nc/masks.png" ] || fail "neural-cleanse: no masks.png sheet"
[ -s "$t/nc/norms.svg" ] || fail "neural-cleanse wrote no norm chart"
# shellcheck disable=SC2086
"$bin" detect abs $m --abs-seeds-per-class 2 --abs-epochs 2 --abs-images 20 --quantize qu-anti-zation:8 --out "$t/abs" > /dev/null
for key in '"max_reasr"' '"candidates"' '"selected"' '"layers"' '"flag_reasr": 0.88' '"as": "qu-anti-zation@8"'; do
  grep -qF "$key" "$t/abs/summary.json" || fail "abs: no $key"
done
[ -s "$t/abs/triggers.png" ] || fail "abs wrote no triggers.png"
# a clean model records no trigger: ABS and Neural Cleanse need none, STRIP does
"$bin" train --model resnet18:width=2 --data synthetic:512 --epochs 1 --max-steps 2 --quiet --out "$t/clean" > /dev/null 2>&1
"$bin" detect abs --model "$t/clean/model.safetensors" --data synthetic:512 --quiet --abs-seeds-per-class 1 --abs-epochs 1 \
  --abs-images 10 --out "$t/abs-clean" > /dev/null || fail "abs refused a model without a trigger"
grep -qF '"trigger": null' "$t/abs-clean/summary.json" || fail "abs on a clean model: the summary names a trigger"
expect_error "records no trigger" detect strip --model "$t/clean/model.safetensors" --data synthetic:512 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "unknown detector" detect abc $m --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--abs-samples: at least 3" detect abs $m --abs-samples 2 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "no layer \"layer7\"" detect abs $m --abs-layers layer7 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--strip-frr: expected a rate" detect strip $m --strip-frr 0 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--quantize: one preset:bits" detect strip $m --quantize mqbench:4,mqbench:8 --out "$t/bad"
echo "detect CLI: all checks passed"
