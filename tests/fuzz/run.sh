#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 120).
#   tests/fuzz/run.sh [SECONDS]
# Corpora live in build-fuzz/corpus-<target>; seeds come from ../shared/data when it is present.
set -euo pipefail
secs=${1:-120}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-fuzz
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)"; exit 0; }
mkdir -p "$out"
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root")
clang++ "${flags[@]}" "$root/tests/fuzz/cifar_fuzz.cpp" "$root/data/cifar_format.cpp" -o "$out/cifar_fuzz"
clang++ "${flags[@]}" "$root/tests/fuzz/image_fuzz.cpp" "$root/data/image_decode.cpp" "$root/tests/fuzz/stb_impl.cpp" \
  -o "$out/image_fuzz"
shared=$root/../shared/data
mkdir -p "$out/corpus-cifar" "$out/corpus-image"
if [ -d "$shared" ]; then
  head -c 9219 "$shared/cifar10/cifar-10-batches-bin/data_batch_1.bin" > "$out/corpus-cifar/three_records"
  cp "$shared/cifar10/cifar-10-batches-bin/batches.meta.txt" "$out/corpus-cifar/meta"
  for f in "$shared"/tiny-imagenet-200/val/images/val_{0,1,2}.JPEG "$shared"/imagenette2/val/n01440764/*.JPEG; do
    [ -f "$f" ] && cp "$f" "$out/corpus-image/" && [ "$(ls "$out/corpus-image" | wc -l)" -ge 4 ] && break
  done
fi
for t in cifar image; do
  echo "== ${t}_fuzz for ${secs}s"
  (cd "$out" && "./${t}_fuzz" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "corpus-$t" 2>&1 |
     grep -E "stat::|ERROR|SUMMARY|Done|crash-|#[0-9]+ *DONE" || true)
done
