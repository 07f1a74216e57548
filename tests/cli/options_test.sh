#!/bin/sh
# Every subcommand's options have distinct names: boost refuses an option given twice in one
# description as ambiguous, and silently gives both meanings the first one's default.
set -eu
bin=$1
cmds=$("$bin" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || { echo "FAIL: no commands in dearest --help"; exit 1; }
bad=0
for c in $cmds; do
  dups=$("$bin" "$c" --help | grep -oE '^  (-[a-zA-Z] \[ )?--[a-z0-9-]+' | sed 's/.*--/--/' | sort | uniq -d)
  [ -z "$dups" ] || { echo "FAIL: dearest $c has more than one option named $dups"; bad=1; }
done
[ $bad = 0 ] && echo "ok: $(echo "$cmds" | wc -w) commands, no option named twice"
exit $bad
