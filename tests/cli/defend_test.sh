#!/bin/sh
# dearest defend from the command line, on the synthetic set in seconds: every method writes its
# quantized model and a summary with CDA/ASR/DTM against the standards (a flipped one among
# them); audit shows EFRAP's per-layer report; a rerun resumes; bad options are clear errors.
#   tests/cli/defend_test.sh DEAREST_BINARY
set -eu
bin=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_error() {  # expect_error TEXT ARGS...: the command fails and says TEXT
  want=$1; shift
  if "$bin" "$@" > "$t/out" 2> "$t/err"; then fail "accepted: $*"; fi
  grep -qF -- "$want" "$t/err" || { cat "$t/err" >&2; fail "error without \"$want\": $*"; }
}

"$bin" attack qu-anti-zation --model resnet18:width=2 --data synthetic:512 --set epochs=1 --set max-steps=2 \
  --set batch=32 --set eval-images=16 --set epoch-quantizers=qu-anti-zation:4 --set final-quantizers=qu-anti-zation:4 \
  --skip-start-verdict --quiet --out "$t/bd.safetensors" > /dev/null 2>&1
common="--model $t/bd.safetensors --data synthetic:512 --calib-size 64 --calib-pool 1"
std="qu-anti-zation:4,qu-anti-zation:4:flipped,mqbench:4"
for m in efrap nearest flipped omse ocs aciq; do
  # shellcheck disable=SC2086
  "$bin" defend $m $common --bits 4 --quiet --iterations 20 --standard "$std" --standard-cache "$t/cache/std.json" --out "$t/$m" > "$t/$m.txt"
  [ -f "$t/$m/quantized.safetensors" ] || fail "$m wrote no quantized model"
  for key in '"dtm"' '"qu-anti-zation@4/flipped"' '"calibration_split": "train"'; do
    grep -qF "$key" "$t/$m/summary.json" || fail "$m: no $key in summary.json"
  done
done
grep -q "efrap@4" "$t/efrap.txt" || fail "efrap printed no result row"
# A cache shared by judgements on different images keeps both (studies judging one model on
# different test subsets used to evict each other's numbers).
for round in 1 2; do
  for n in 40 48; do
    # shellcheck disable=SC2086
    "$bin" defend nearest $common --bits 4 --quiet --images $n --standard "$std" --standard-cache "$t/cache/std.json" --out "$t/nearest-$n-$round" > /dev/null
  done
done
grep -qF '"standard_from_cache": true' "$t/nearest-40-2/summary.json" || fail "the 40-image numbers were evicted from the cache"
grep -qF '"standard_from_cache": true' "$t/nearest-48-2/summary.json" || fail "the 48-image numbers were not cached"
# The removal defenses: the defended float model, then the standards on it.
for m in ft fp nad mcr ibau; do
  # shellcheck disable=SC2086
  "$bin" defend $m $common --bits 4 --quiet --epochs 1 --teacher-epochs 1 --curve-epochs 1 --ibau-rounds 1 --ibau-batch 16 --max-steps 2 --clean-portion 0.2 --standard "$std" \
    --standard-cache "$t/cache/std.json" --out "$t/$m" > "$t/$m.txt"
  for key in '"dtm"' '"defended_float"' '"standard_from_cache": true'; do
    grep -qF "$key" "$t/$m/summary.json" || fail "$m: no $key in summary.json"
  done
  grep -q "+ qu-anti-zation@4/flipped" "$t/$m.txt" || fail "$m printed no row per standard"
  "$bin" judge --model "$t/$m/model.safetensors" --data synthetic:512 --quantizers qu-anti-zation:4 > /dev/null 2>&1 ||
    fail "$m: the defended model does not load in judge"
done
grep -qF '"prune"' "$t/fp/summary.json" || fail "fp: no pruning record"
grep -qF '"attention_loss"' "$t/nad/summary.json" || fail "nad: no attention record"
grep -qF '"chosen_t"' "$t/mcr/summary.json" || fail "mcr: no chosen point of the curve"
grep -qF '"fixed_point_iterations"' "$t/ibau/summary.json" || fail "ibau: no round record"
grep -qF '"fine_tune"' "$t/ft/summary.json" || fail "ft: no fine-tuning record"
# Through the straight-through estimator: the quantized model itself is defended and written.
# shellcheck disable=SC2086
"$bin" defend ft $common --ste --bits 4 --quiet --epochs 1 --max-steps 2 --clean-portion 0.2 --standard mqbench:4 --out "$t/ft-ste" > /dev/null
[ -f "$t/ft-ste/quantized.safetensors" ] || fail "ft --ste wrote no quantized model"
grep -qF '"ste": true' "$t/ft-ste/summary.json" || fail "ft --ste: not recorded"
# shellcheck disable=SC2086
"$bin" defend mcr $common --ste --bits 4 --quiet --epochs 1 --curve-epochs 1 --max-steps 2 --clean-portion 0.2 --standard mqbench:4 --out "$t/mcr-ste" > "$t/mcr-ste.txt"
[ -f "$t/mcr-ste/quantized.safetensors" ] || fail "mcr --ste wrote no quantized model"
grep -qF '"chosen_t"' "$t/mcr-ste/summary.json" || fail "mcr --ste: no chosen point of the curve"
grep -q "mcr-ste t=0.[19]0 mqbench@4" "$t/mcr-ste.txt" || fail "mcr --ste printed no quantized row"
grep -qF 'prune=layer4' "$t/fp/summary.json" || fail "fp: the defended model is not the pruned one"
"$bin" audit --quantized "$t/efrap/quantized.safetensors" > "$t/audit.txt"
grep -q "flip" "$t/audit.txt" || fail "audit shows no EFRAP report"
# A model made from a backdoored one keeps its backdoor's record: judge needs no --trigger.
# shellcheck disable=SC2086
"$bin" quantize $common --preset qu-anti-zation --bits 4 --out "$t/quantized" > /dev/null 2>&1
for f in "$t/quantized/quantized.safetensors" "$t/efrap/quantized.safetensors"; do
  "$bin" judge --model "$f" --data synthetic:512 > /dev/null 2> "$t/judge.err" || { cat "$t/judge.err" >&2; fail "judge $f without --trigger"; }
done
grep -qF "attack_params" "$t/quantized/quantized.safetensors" || fail "quantize dropped the attack's record"
# A finished run resumes from its progress file: every layer done, nothing learned again.
# shellcheck disable=SC2086
"$bin" defend efrap $common --bits 4 --iterations 20 --standard "$std" --out "$t/efrap" 2> "$t/resume.err" > /dev/null
grep -q "layers done" "$t/resume.err" || { cat "$t/resume.err" >&2; fail "the rerun did not resume"; }
# The test split as the calibration source.
# shellcheck disable=SC2086
"$bin" defend nearest $common --bits 4 --quiet --calib-split test --out "$t/test-split" > /dev/null
grep -qF '"calibration_split": "test"' "$t/test-split/summary.json" || fail "--calib-split test not recorded"
# Another activation observer than the preset's, recorded with the quantizer.
# shellcheck disable=SC2086
"$bin" defend nearest $common --bits 4 --quiet --act-observer minmax --out "$t/act-minmax" > /dev/null
grep -q '"quantization": "[^"]*activations [^"]*\[minmax\]' "$t/act-minmax/summary.json" || fail "--act-observer minmax not recorded"
# shellcheck disable=SC2086
"$bin" defend nearest $common --bits 4 --quiet --act-observer percentile:99.9 --out "$t/act-p999" > /dev/null
grep -q '"quantization": "[^"]*activations [^"]*\[percentile 99.9\]' "$t/act-p999/summary.json" || fail "--act-observer percentile:99.9 not recorded"

# shellcheck disable=SC2086
expect_error "2..8" defend efrap $common --bits 9 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "omse sets its own ranges" defend omse $common --act-observer minmax --out "$t/bad"
# shellcheck disable=SC2086
expect_error "ft is compared under the --standard" defend ft $common --weight-observer mse --out "$t/bad"
# shellcheck disable=SC2086
expect_error "observer: expected minmax" defend efrap --model "$t/no-such-file" --data synthetic:512 --act-observer median --out "$t/bad"
# shellcheck disable=SC2086
expect_error "only percentile takes a value" defend efrap $common --act-observer minmax:3 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "the percentile must be in (50, 100]" defend efrap $common --weight-observer percentile:40 --out "$t/bad"
# An observer the grid never consults is refused, before any file is read.
expect_error "from each batch at run time; no observer" defend efrap --model "$t/no-such-file" --data synthetic:512 --preset qu-anti-zation --act-observer minmax --out "$t/bad"
expect_error "at every forward; no observer" defend nearest --model "$t/no-such-file" --data synthetic:512 --preset qu-anti-zation --weight-observer mse --out "$t/bad"
expect_error "activations stay float (mqbench with 0 activation bits)" defend nearest --model "$t/no-such-file" --data synthetic:512 --abits 0 --act-observer minmax --out "$t/bad"
expect_error "activations stay float (comp-artifact" quantize --model "$t/no-such-file" --data synthetic:512 --preset comp-artifact --act-observer minmax --out "$t/bad"
expect_error "at every forward; no observer" defend efrap --model "$t/no-such-file" --data synthetic:512 --preset efrap-standard --weight-observer mse --out "$t/bad"
# EFRAP on the grid of the reference's README logs, with float activations as those rows: the
# unclamped per-tensor weights and no activation quantizer anywhere.
# shellcheck disable=SC2086
"$bin" defend efrap $common --preset efrap-standard --bits 4 --abits 0 --iterations 20 --quiet \
  --standard efrap-standard:4 --out "$t/efrap-std" > /dev/null 2>&1 || fail "defend efrap --preset efrap-standard --abits 0 failed"
grep -qF '"efrap-standard@4"' "$t/efrap-std/summary.json" || fail "efrap-standard: no standard in the summary"
grep -qF 'unclamped' "$t/efrap-std/summary.json" || fail "efrap-standard: the summary does not record the unclamped grid"
grep -q '| 4/0 |' "$t/efrap-std/report.md" || fail "efrap-standard --abits 0: no float-activation layer in the report"
# dearest quantize shares the observer options and their checks.
"$bin" quantize --model "$t/bd.safetensors" --data synthetic:512 --calib-size 64 --calib-pool 1 --preset mqbench --bits 4 \
  --act-observer percentile:99.9 --out "$t/q-p999" > /dev/null 2>&1 || fail "quantize --act-observer percentile:99.9 failed"
grep -rqF 'percentile 99.9' "$t/q-p999" || fail "quantize --act-observer percentile:99.9 not recorded"
expect_error "from each batch at run time; no observer" quantize --model "$t/no-such-file" --data synthetic:512 --preset qu-anti-zation --act-observer minmax --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--calib-split: expected train or test" defend efrap $common --calib-split val --out "$t/bad"
# shellcheck disable=SC2086
expect_error "calibration set must have images" defend efrap --model "$t/bd.safetensors" --data synthetic:512 --calib-size 0 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "unknown preset" defend efrap $common --standard nothing:4 --iterations 1 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "third field may only be" defend efrap $common --standard mqbench:4:other --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--prune-rate: expected a fraction" defend fp $common --prune-rate 1 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--nad-betas: \"x\" is not a number" defend nad $common --nad-betas 500,x --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--mcr-t: each t must be in [0, 1]" defend mcr $common --mcr-t 0.1,2 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "folds BN into the weights" defend ft $common --ste --standard pytorch-fbgemm:8 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--clean-portion: expected a fraction" defend ft $common --clean-portion 0 --out "$t/bad"
# shellcheck disable=SC2086
expect_error "--optimizer: expected sgd, adam or adamw" defend ft $common --optimizer rmsprop --out "$t/bad"
echo "defend CLI: all checks passed"
