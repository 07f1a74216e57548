#!/bin/sh
# Every subcommand's options have distinct names: boost refuses an option given twice in one
# description as ambiguous, and silently gives both meanings the first one's default. Every
# default reads as it was written (0.05, not 0.050000000000000003).
set -eu
bin=$1
cmds=$("$bin" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || { echo "FAIL: no commands in dearest --help"; exit 1; }
bad=0
for c in $cmds; do
  dups=$("$bin" "$c" --help | grep -oE '^  (-[a-zA-Z] \[ )?--[a-z0-9-]+' | sed 's/.*--/--/' | sort | uniq -d)
  [ -z "$dups" ] || { echo "FAIL: dearest $c has more than one option named $dups"; bad=1; }
  noisy=$("$bin" "$c" --help | grep -E '\(=-?[0-9]*\.[0-9]*(0000000|9999999)' || true)
  [ -z "$noisy" ] || { echo "FAIL: dearest $c prints a default with binary noise: $noisy"; bad=1; }
done
# an engine option's bad value is a clear error
if "$bin" info --conv fast > /dev/null 2> "${TMPDIR:-/tmp}/conv-err.$$"; then echo "FAIL: --conv fast accepted"; bad=1
elif ! grep -q 'expected direct or winograd, got "fast"' "${TMPDIR:-/tmp}/conv-err.$$"; then
  echo "FAIL: --conv fast: $(cat "${TMPDIR:-/tmp}/conv-err.$$")"; bad=1
fi
rm -f "${TMPDIR:-/tmp}/conv-err.$$"
[ $bad = 0 ] && echo "ok: $(echo "$cmds" | wc -w) commands, no option named twice, every default as written"
exit $bad
