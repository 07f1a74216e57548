#!/usr/bin/env bash
# The README's two commands:
#   scripts/quickstart.sh main   install what is missing, build, run the main job
#   scripts/quickstart.sh test   install what is missing, build, run the whole test suite
# BUILD_DIR (default build), THREADS (default: all cores) and CMAKE_ARGS may be set.
set -euo pipefail
job=${1:-main}
case "$job" in main|test) ;; *) echo "usage: $0 main|test" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" --parallel "$(nproc)"
export OMP_NUM_THREADS=${THREADS:-$(nproc)}
if [ "$job" = main ]; then
  # The demo's folder is the working directory's dearest-demo/; a rerun reuses its finished steps.
  exec "$build/tools/dearest" demo
fi
cd "$build" && exec ctest --output-on-failure --timeout 600
