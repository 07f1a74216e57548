#!/bin/sh
# dearest experiment end to end on configs/smoke.ini: malformed studies refused before anything
# runs (naming the line), a run killed halfway, a rerun that finishes without recomputing the
# finished cells, a third run that computes nothing, and the results files.
set -eu
bin=$1 smoke=$2
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# ---- malformed studies: refused, the line named, nothing written
refuse() {  # want-line want-text: the study is $t/bad.ini
  if "$bin" experiment "$t/bad.ini" --out "$t/bad" > "$t/out.txt" 2>&1; then fail "accepted: $(cat "$t/bad.ini")"; fi
  grep -qF "bad.ini:$1: " "$t/out.txt" || fail "no line $1 in: $(cat "$t/out.txt")"
  grep -qF "$2" "$t/out.txt" || fail "expected \"$2\" in: $(cat "$t/out.txt")"
  [ ! -e "$t/bad" ] || fail "a refused study wrote $t/bad"
}
study() { printf '[study]\ndatasets = synthetic:600\nmodels = resnet18:width=2\nattacks = qu-anti-zation\nbits = 4\ndefenses = nearest\n%s\n' "$1" > "$t/bad.ini"; }
study 'colour = blue'; refuse 7 'unknown key "colour" in [study]'
study 'attacks = badnet'; sed -i '4d' "$t/bad.ini"; refuse 6 'unknown attack "badnet"'
study 'jobs = two'; refuse 7 'jobs: expected a whole number'
study '[train]
epochs = many'; refuse 8 'bad value for "epochs" (dearest train)'
study '[train]
epoch = 3'; refuse 8 'unknown key "epoch": not an option of dearest train'
study '[attack]
lr = fast'; refuse 8 'bad value for "lr" (attack qu-anti-zation): expected a number'
study '[attack qu-anti-zation]
c3 = 1'; refuse 8 'unknown key "c3": not a parameter of attack qu-anti-zation'
study '[defend]
iterations = 1.5'; refuse 8 'bad value for "iterations" (dearest defend)'
study '[defend]
out = x'; refuse 8 '"out" is set by the study itself'
study '[defence]'; refuse 7 'unknown section [defence]'
study 'bits = 4, 16'; sed -i '5d' "$t/bad.ini"; refuse 6 'bits: expected a whole number in [2, 8], got "16"'
study '[defend ft]
epochs = 1'; refuse 8 '[defend ft]: ft is not among the study'
study '[defend]
preset = qu-anti-zation'; sed -i 's/^defenses = nearest$/defenses = nearest, aciq/' "$t/bad.ini"; refuse 8 'would apply to aciq, which is its own quantizer'
study '[attack]
calib = 32:16:0.2
mqbench-calib = 5000:16:0.2'; refuse 9 "attack qu-anti-zation's mqbench-calib asks for 5000 calibration images but synthetic:600's pool"
study '[attack]
calib = 32:16:0.2
mqbench-calib = 32:16:0.2'; refuse 6 "defense nearest's calibration (default size 1024) asks for 1024 calibration images"
echo "ok: malformed studies refused"
for f in "$(dirname "$smoke")"/*.ini; do
  "$bin" experiment "$f" --dry-run > "$t/dry.txt" 2>&1 || fail "$f does not pass its own check: $(cat "$t/dry.txt")"
  ! grep -qx "  dearest *" "$t/dry.txt" || fail "$f: --dry-run prints a step with no command"
done
"$bin" experiment "$(dirname "$smoke")/cifar10-mini.ini" --dry-run | grep -q "^  clean model (given): runs/cifar10-r18w16-jpeg/model.safetensors$" || fail "--dry-run does not name a given clean model"
echo "ok: every study in $(dirname "$smoke") passes its check"

# ---- a run killed halfway, then resumed
out=$t/smoke
setsid "$bin" experiment "$smoke" --out "$out" --quiet > "$t/run1.txt" 2>&1 &
pid=$!
i=0
until ls "$out"/artifacts/defend-*/summary.json > /dev/null 2>&1; do
  sleep 0.2; i=$((i + 1)); [ $i -lt 1500 ] || fail "no cell finished in 300 s"
  kill -0 $pid 2> /dev/null || fail "the first run ended before it could be killed: $(cat "$t/run1.txt")"
done
kill -TERM -$pid || fail "could not kill the run"
wait $pid 2> /dev/null || true
finished=$(ls "$out"/artifacts/defend-*/summary.json)
n1=$(echo "$finished" | wc -l)
total=$("$bin" experiment "$smoke" --out "$out" --dry-run | grep -c "^  dearest defend")
# engine options reach every command the study runs (they are other processes), and leave the
# cells' folders, which are keyed without them, where they were
"$bin" experiment "$smoke" --out "$out" --dry-run --isa avx2 --layout plain --conv winograd > "$t/isa.txt" 2>&1 || fail "--isa: $(cat "$t/isa.txt")"
[ "$(grep -c "^  dearest " "$t/isa.txt")" = "$(grep -c -- "--threads [0-9]* --isa avx2 --layout plain --conv winograd" "$t/isa.txt")" ] || fail "--isa/--layout/--conv not on every step: $(cat "$t/isa.txt")"
"$bin" experiment "$smoke" --out "$out" --dry-run | sed 's/ --threads [0-9]*//' > "$t/plain.txt"
sed 's/ --threads [0-9]* --isa avx2 --layout plain --conv winograd//' "$t/isa.txt" | cmp -s - "$t/plain.txt" || fail "--isa moved the cells' folders"
[ "$n1" -lt "$total" ] || fail "the run was not killed halfway ($n1 of $total cells done)"
for f in $finished; do touch -r "$f" "$f.before"; done
"$bin" experiment "$smoke" --out "$out" --report > "$t/partial.md" 2>&1 || fail "--report failed: $(cat "$t/partial.md")"
grep -qF "$n1 of $total cells finished" "$t/partial.md" || fail "--report: $(head -3 "$t/partial.md")"
grep -qF "Nothing of this study is running now." "$t/partial.md" || fail "--report after the kill: $(tail -3 "$t/partial.md")"
left=$(sed -n 's/^Left to make: \([0-9]*\) clean models*, \([0-9]*\) attacked models*, \([0-9]*\) defense runs* .*/\3/p' "$t/partial.md")
[ "$left" = $((total - n1)) ] || fail "--report after the kill: expected $((total - n1)) defense runs left: $(grep '^Left' "$t/partial.md")"
"$bin" experiment "$smoke" --out "$out" --quiet > "$t/run2.txt" 2>&1 || fail "the rerun failed: $(cat "$t/run2.txt")"
for f in $finished; do [ ! "$f" -nt "$f.before" ] || fail "a finished cell was recomputed: $f"; done
n2=$(ls "$out"/artifacts/defend-*/summary.json | wc -l)
[ "$n2" = "$total" ] || fail "the rerun finished $n2 of $total cells"
grep -qE ' [1-9][0-9]* reused' "$t/run2.txt" || fail "the rerun reused nothing: $(cat "$t/run2.txt")"
"$bin" experiment "$smoke" --out "$out" --quiet > "$t/run3.txt" 2>&1
grep -qF ': 0 steps run' "$t/run3.txt" || fail "a third run computed something: $(cat "$t/run3.txt")"
"$bin" experiment "$smoke" --out "$out" --report | grep -qx "Left to make: 0 clean models, 0 attacked models, 0 defense runs (the running ones among them)." ||
  fail "--report after the whole study: something left to make"
echo "ok: killed after $n1 of $total cells; the rerun kept them and finished; a third run computed nothing"

# ---- two processes over one study: each artifact made once, by one of them
both=$t/both
"$bin" experiment "$smoke" --out "$both" --quiet > "$t/p1.txt" 2>&1 &
p1=$!
"$bin" experiment "$smoke" --out "$both" --quiet > "$t/p2.txt" 2>&1 || fail "the second process failed: $(cat "$t/p2.txt")"
wait $p1 || fail "the first process failed: $(cat "$t/p1.txt")"
made=$(ls -d "$both"/artifacts/*/ | wc -l)
ran=$(cat "$t/p1.txt" "$t/p2.txt" | sed -n 's/.*: \([0-9]*\) steps run.*/\1/p' | awk '{ s += $1 } END { print s }')
[ "$ran" = "$made" ] || fail "two processes ran $ran steps for $made artifacts"
echo "ok: two processes over one study made its $made artifacts once"

# ---- an artifact being made elsewhere is not waited for while other cells can run
held=$t/held
attack_dir=$("$bin" experiment "$smoke" --out "$held" --dry-run | grep -m1 "^  dearest attack" | sed 's/.* --out \([^ ]*\) .*/\1/')
[ -n "$attack_dir" ] || fail "no attack step in the dry run"
mkdir -p "$attack_dir"
(flock "$attack_dir/.lock" sleep 15; touch "$t/released") &
holder=$!
sleep 0.5
"$bin" experiment "$smoke" --out "$held" --report > "$t/held-report.txt" 2>&1 || fail "--report failed: $(cat "$t/held-report.txt")"
grep -qF -- "- attacked model, synthetic:600 resnet18:width=2 qu-anti-zation ($attack_dir):" "$t/held-report.txt" ||
  fail "--report does not show the attack being made: $(tail -5 "$t/held-report.txt")"
"$bin" experiment "$smoke" --out "$held" --jobs 1 --quiet > "$t/held.txt" 2>&1 || fail "the study failed beside a held artifact: $(cat "$t/held.txt")"
wait $holder
[ -f "$t/released" ] || fail "the lock holder did not finish"
early=$(find "$held"/artifacts/defend-* -name summary.json ! -newer "$t/released" | wc -l)
late=$(find "$held"/artifacts/defend-* -name summary.json -newer "$t/released" | wc -l)
[ "$early" -ge 1 ] || fail "no cell finished while one attack was held elsewhere (the study waited)"
[ "$late" -ge 1 ] || fail "the held attack's cells did not wait for it"
[ $((early + late)) = "$total" ] || fail "the study finished $((early + late)) of $total cells"
# each of the 20 cells' 3 steps counted once, however often a busy cell was tried
steps=$(sed -n 's/.*: \([0-9]*\) steps run, \([0-9]*\) reused;.*/\1 \2/p' "$t/held.txt" | awk '{ print $1 + $2 }')
[ "$steps" = $((3 * total)) ] || fail "steps counted $steps times for $((3 * total)) steps: $(tail -1 "$t/held.txt")"
echo "ok: with one attack held by another process, $early cells ran meanwhile and $late after it"

# ---- a failing step fails the other cells that need it without running again
# (the attack's trigger does not fit the image: an error once it runs)
printf '[study]\nname = broken\ndatasets = synthetic:600\nmodels = resnet18:width=2\nattacks = qu-anti-zation\nbits = 4\ndefenses = nearest, flipped, efrap\n[train]\nepochs = 1\nmax-steps = 1\n[attack]\ncalib = 32:16:0.2\nmqbench-calib = 32:16:0.2\ntrigger = square:size=40,top=0,left=0\n[defend]\ncalib-size = 32\ncalib-pool = 0.2\n' > "$t/broken.ini"
if "$bin" experiment "$t/broken.ini" --out "$t/broken" --quiet > "$t/broken.txt" 2>&1; then fail "a study whose attack cannot run succeeded"; fi
grep -qF "3 cells failed" "$t/broken.txt" || fail "expected 3 failed cells: $(cat "$t/broken.txt")"
[ "$(grep -c '^\[[23]/3\] .*FAILED: attacked model failed in another cell' "$t/broken.txt")" = 2 ] || fail "the failed attack was not reported to its other cells: $(cat "$t/broken.txt")"
# its log is appended to by every run of the step
[ "$(grep -c "does not fit" "$t"/broken/artifacts/attack-*/stderr.txt)" = 1 ] || fail "the failed attack ran more than once"
echo "ok: an attack that failed was run once and failed its 3 cells"

# ---- another study over the first one's artifacts folder reuses what that one made
sed -e 's/^name = smoke$/name = smoke-shared/' -e "s#^\[study\]\$#[study]\nartifacts = $out/artifacts#" "$smoke" > "$t/shared.ini"
"$bin" experiment "$t/shared.ini" --out "$t/shared" --quiet > "$t/shared.txt" 2>&1 || fail "the sharing study failed: $(cat "$t/shared.txt")"
grep -qF ': 0 steps run, 60 reused;' "$t/shared.txt" || fail "the sharing study recomputed: $(tail -1 "$t/shared.txt")"
[ ! -d "$t/shared/artifacts" ] || fail "the sharing study made its own artifacts folder"
[ "$(wc -l < "$t/shared/results.csv")" = $((total + 1)) ] || fail "the sharing study has not every cell in its results"
echo "ok: a study over another's artifacts folder computed nothing and has all its results"

# ---- the program rebuilt (here: removed) while a study runs: its steps still run the same build
cp "$bin" "$t/dearest-copy"
"$t/dearest-copy" experiment "$smoke" --out "$t/rebuilt" --quiet > "$t/rebuilt.txt" 2>&1 &
p3=$!
sleep 1
rm -f "$t/dearest-copy"
wait $p3 || fail "the study failed once its program file was gone: $(cat "$t/rebuilt.txt")"
echo "ok: a study outlives its program file"

# ---- the results
[ "$(wc -l < "$out/results.csv")" = $((total + 1)) ] || fail "results.csv: expected $total rows"
grep -qF '| synthetic:600 | resnet18 width=2 | qu-anti-zation | 4 |' "$out/tables.md" || fail "tables.md has no qu-anti-zation row"
grep -qF '±' "$out/tables.md" || fail "tables.md: no mean±std over the seeds"
grep -qF '"finished": '"$total" "$out/results.json" || fail "results.json: not every cell finished"
ls "$out"/figures/*.svg > /dev/null || fail "no figures"
ls "$out"/figures/*-efrap-iterations.svg > /dev/null 2>&1 || fail "no sweep figure for efrap@it2, efrap@it10"
grep -qF '| bits | float | standard | nearest | efrap | efrap@it2 |' "$out/tables.md" || fail "tables.md: not a row per width with a column per defense (efrap@it2 among them)"
grep -qF "| bits | float | ft |" "$out/tables.md" || fail "tables.md: no table of the removal defense's own float model"
echo "ok: results.csv, results.json, tables.md, figures"
# the steps' own figures, copied under readable names: 2 clean curves (one per seed), 4 attack curves
# (2 attacks x 2 seeds; one width, so none is named by it), 12 flip-rate charts (3 EFRAP columns x 4)
for f in clean-synthetic_600-resnet18_width_2-seed1 attack-synthetic_600-resnet18_width_2-comp-artifact-seed0 \
         flip-rate-synthetic_600-resnet18_width_2-qu-anti-zation-4-bit-efrap_it10-seed1; do
  [ -f "$out/figures/$f.svg" ] || fail "no $f.svg among: $(ls "$out/figures")"
  grep -qF "(figures/$f.svg)" "$out/tables.md" || fail "tables.md does not show $f.svg"
done
[ "$(ls "$out"/figures/clean-*.svg | wc -l)" = 2 ] && [ "$(ls "$out"/figures/attack-*.svg | wc -l)" = 4 ] &&
  [ "$(ls "$out"/figures/flip-rate-*.svg | wc -l)" = 12 ] || fail "expected 2 clean, 4 attack and 12 flip-rate figures: $(ls "$out/figures")"
echo "ok: training curves, attack curves and flip rates copied to figures/"

# ---- the tables name a model file by the architecture it records; a figure no longer made is removed
clean=$(ls "$out"/artifacts/clean-*/model.safetensors | head -1)
printf '[study]\nname = given\ndatasets = synthetic:600\nmodels = %s\nattacks = qu-anti-zation\nbits = 4\ndefenses = nearest\n[attack]\nepochs = 1\nmax-steps = 1\ncalib = 32:16:0.2\nmqbench-calib = 32:16:0.2\neval-images = 64\n[defend]\ncalib-size = 32\ncalib-pool = 0.2\nimages = 64\n' "$clean" > "$t/given.ini"
mkdir -p "$t/given/figures" && touch "$t/given/figures/old-name.svg"
"$bin" experiment "$t/given.ini" --out "$t/given" --quiet > "$t/given.txt" 2>&1 || fail "the study of a given model failed: $(cat "$t/given.txt")"
grep -qF '| synthetic:600 | resnet18 width=2 | qu-anti-zation |' "$t/given/tables.md" || fail "tables.md names the model file not its architecture: $(grep qu-anti "$t/given/tables.md")"
[ ! -e "$t/given/figures/old-name.svg" ] || fail "a stale figure was kept"
ls "$t"/given/figures/synthetic_600-resnet18_width_2-qu-anti-zation-4.svg > /dev/null || fail "no figure named by the architecture: $(ls "$t/given/figures")"
[ -f "$t/given/figures/clean-synthetic_600-resnet18_width_2.svg" ] || fail "the given model's training curve (beside it) was not copied: $(ls "$t/given/figures")"
echo "ok: a given model file is named by its architecture in the tables and figures"
