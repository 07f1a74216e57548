#!/bin/sh
# dearest demo's machinery at toy size (a width-2 model barely trained: its numbers mean nothing;
# the real demo's are in docs/RESULTS.md): every step, the table, the report folder, and a rerun
# that reuses every step.
set -eu
bin=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
common="--threads 1 --isa avx2 --data synthetic:400 --model resnet18:width=2 --epochs 1 --attack-epochs 1 --iterations 5"
args="$common --out $t/demo"
# shellcheck disable=SC2086
"$bin" demo $args > "$t/run1.txt" 2> "$t/err1.txt" || fail "the demo failed: $(tail -5 "$t/err1.txt")"
for row in "clean model, float" "clean model, 4-bit nearest" "backdoored, float" "backdoored, 4-bit nearest" "backdoored, 4-bit flipped" "backdoored, 4-bit efrap"; do
  grep -qF "$row" "$t/run1.txt" || fail "no row \"$row\" in the table: $(cat "$t/run1.txt")"
done
grep -qE "^Float model: ASR [0-9.]+%.*; the clean model at 4 bits: [0-9.]+%" "$t/run1.txt" || fail "no summary line with the clean model at 4 bits"
grep -qE "(puts it back to sleep|Not shown at these settings)" "$t/run1.txt" || fail "the story was not checked"
for f in README.md results.svg clean-training.svg attack.svg flip-rate.svg loss.svg gradcam.png tsne-1.svg tsne-2.svg tsne-3.svg; do
  [ -s "$t/demo/report/$f" ] || fail "report/$f missing"
done
grep -qF "dearest defend efrap" "$t/demo/report/README.md" || fail "the report does not list the commands"
grep -qF '"story_holds"' "$t/demo/demo.json" || fail "demo.json has no verdict"
# engine options reach every step (each is a child process); the ISA cap is one a CI host has
[ "$(grep -l -- "--threads 1 --isa avx2" "$t"/demo/*/command.txt | wc -l)" = 7 ] || fail "--threads/--isa not passed to every step: $(cat "$t"/demo/*/command.txt)"
# shellcheck disable=SC2086
"$bin" demo $args > "$t/run2.txt" 2> "$t/err2.txt" || fail "the rerun failed"
[ "$(grep -c "done before, reused" "$t/err2.txt")" = 7 ] || fail "the rerun did not reuse all 7 steps: $(cat "$t/err2.txt")"
cmp -s "$t/run1.txt" "$t/run2.txt" || fail "the rerun printed another table"
# a rerun with another option must not reuse steps made by other commands
# shellcheck disable=SC2086
"$bin" demo $args --seed 1 > "$t/run3.txt" 2> "$t/err3.txt" && fail "a rerun with --seed 1 reused the seed-0 steps"
grep -qF "1-clean was made by another command" "$t/err3.txt" || fail "--seed 1 over a seed-0 demo: $(cat "$t/err3.txt")"
grep -qF -- "--seed 0" "$t/demo/1-clean/command.txt" || fail "the clean training does not get the demo's seed"
grep -qF -- "--seed 0" "$t/demo/2-attack/command.txt" || fail "the attack does not get the demo's seed"
# another seed in its own folder: the table and the report say which
# shellcheck disable=SC2086
"$bin" demo $common --out "$t/demo-s1" --seed 1 > "$t/run4.txt" 2> "$t/err4.txt" || fail "the demo with --seed 1 failed: $(tail -5 "$t/err4.txt")"
grep -qF "4-bit, seed 1" "$t/run4.txt" || fail "the table does not name seed 1: $(head -3 "$t/run4.txt")"
grep -qF "4-bit, seed 1" "$t/demo-s1/report/README.md" || fail "the report does not name seed 1"
grep -qF -- "--seed 1" "$t/demo-s1/1-clean/command.txt" || fail "the clean training of --seed 1 does not get it"
if "$bin" demo --out "$t/demo" --bits 9 > /dev/null 2>&1; then fail "--bits 9 accepted"; fi
if "$bin" demo --out "$t/demo2" --seed -1 > /dev/null 2>&1; then fail "--seed -1 accepted"; fi
[ ! -e "$t/demo2" ] || fail "a refused --seed left a folder behind"
mkdir -p "$t/notademo" && touch "$t/notademo/keep"
if "$bin" demo --out "$t/notademo" --fresh > /dev/null 2>&1; then fail "--fresh removed a folder that is not a demo's"; fi
[ -f "$t/notademo/keep" ] || fail "--fresh removed a file it should not have"
# explain, on the demo's models: a bad choice and mismatched labels refused
q=$t/demo/3-nearest/quantized.safetensors
"$bin" explain pca --model "$q" --data synthetic:400 --out "$t/x" > "$t/x.txt" 2>&1 && fail "explain pca accepted"
grep -qF "expected gradcam or tsne" "$t/x.txt" || fail "explain pca: $(cat "$t/x.txt")"
"$bin" explain gradcam --model "$q" --labels a,b --data synthetic:400 --out "$t/x" > "$t/x.txt" 2>&1 && fail "two labels for one model accepted"
grep -qF -- "--labels: 2 labels for 1 models" "$t/x.txt" || fail "explain labels: $(cat "$t/x.txt")"
grep -qF '"sent_to_target"' "$t/demo/6-gradcam/gradcam.json" || fail "gradcam.json has no predictions"
echo "ok: demo table, report, figures, a rerun reusing every step, a rerun with another seed refused, bad options refused"
