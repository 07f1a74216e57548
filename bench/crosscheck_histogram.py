#!/usr/bin/python3
"""PyTorch's HistogramObserver against dearest's on random batch sequences (needs python3-torch).

Writes each case's batches to a safetensors file, runs torch.ao.quantization.HistogramObserver
(quint8, with and without reduce_range) and build/bench/bench_observer_check on them, and prints
whether the chosen scale and zero point agree bit for bit.

    /usr/bin/python3 bench/crosscheck_histogram.py [--cases 20] [--bin build/bench/bench_observer_check]
"""
import argparse, json, struct, subprocess, sys, tempfile, os
import numpy as np
import torch
from torch.ao.quantization.observer import HistogramObserver


def write_safetensors(path, tensors):
    header, data, off = {}, b"", 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--bin", default="build/bench/bench_observer_check")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    agree = total = 0
    with tempfile.TemporaryDirectory() as d:
        for case in range(a.cases):
            nb = int(rng.integers(1, 6))
            kind = case % 3
            batches = []
            for b in range(nb):
                x = rng.standard_normal((8, 16, 8, 8)).astype(np.float32) * float(rng.uniform(0.3, 4))
                if kind == 1:
                    x = np.maximum(x, 0)  # post-ReLU
                if kind == 2:
                    x = x + float(rng.uniform(-3, 3))
                batches.append(x)
            path = os.path.join(d, f"case{case}.safetensors")
            write_safetensors(path, {f"batch.{i}": x for i, x in enumerate(batches)})
            for reduce in (False, True):
                ob = HistogramObserver(reduce_range=reduce)
                for x in batches:
                    ob(torch.from_numpy(x))
                s, z = ob.calculate_qparams()
                cmd = [a.bin, path] + (["--reduce-range"] if reduce else [])
                ours = json.loads(subprocess.check_output(cmd))
                same = np.float32(ours["scale"]) == np.float32(s.item()) and ours["zero_point"] == int(z.item())
                agree += same
                total += 1
                if not same:
                    print(f"case {case} ({nb} batches, kind {kind}, reduce_range {reduce}): torch scale {s.item()!r} zp {int(z.item())}, "
                          f"dearest scale {ours['scale']!r} zp {ours['zero_point']}")
    print(f"{agree} of {total} cases agree bit for bit")
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())
