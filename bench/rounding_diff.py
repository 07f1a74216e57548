#!/usr/bin/env python3
"""How many learned rounding decisions two quantized models (dearest defend efrap's
quantized.safetensors) disagree on, per layer and in all: the check that a change of kernel
(--conv winograd, --isa avx2, a thread count) leaves EFRAP's result where it was.

    python3 bench/rounding_diff.py A/quantized.safetensors B/quantized.safetensors

Reads the files' `quant/LAYER/weight.up_mask` tensors (u8, 1 = rounded up) with the standard
library only; both files must hold the same layers.
"""
import json
import struct
import sys


def masks(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    return {k[len("quant/"):-len("/weight.up_mask")]: raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]]
            for k, v in header.items() if k.endswith("/weight.up_mask")}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = masks(sys.argv[1]), masks(sys.argv[2])
    if not a:
        sys.exit(f"{sys.argv[1]}: no learned rounding (weight.up_mask) in it")
    if sorted(a) != sorted(b):
        sys.exit(f"the two files hold different layers: {sorted(set(a) ^ set(b))}")
    total = differ = 0
    for layer in a:
        if len(a[layer]) != len(b[layer]):
            sys.exit(f"{layer}: {len(a[layer])} against {len(b[layer])} weights")
        d = sum(x != y for x, y in zip(a[layer], b[layer]))
        total += len(a[layer])
        differ += d
        print(f"{layer:32s} {len(a[layer]):9d} weights {d:7d} differ ({100.0 * d / len(a[layer]):.4f}%)")
    print(f"{'all':32s} {total:9d} weights {differ:7d} differ ({100.0 * differ / total:.4f}%)")


if __name__ == "__main__":
    main()
