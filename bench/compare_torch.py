#!/usr/bin/env python3
"""PyTorch peer for bench_kernels: the same ResNet18-CIFAR convolutions (forward, backward-data,
backward-weights) and memory-bound ops, timed the same way (median of --reps after a warm-up), on
the same thread count, in the same session, so that the ratio is what this noisy machine can
honestly report.

    python3 bench/compare_torch.py --bench build/bench/bench_kernels [--batch 128] [--reps 5] [--threads 2]

Needs Debian's python3-torch (1.13, built on the same oneDNN 2.6). Used by benchmarks only: the
product, its build and its tests never use Python.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def median_time(reps, fn):
    fn()
    ts = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - a)
    return statistics.median(ts)


def layers(w):
    return [("conv1 3->w 32x32 3x3 s1", 3, w, 32, 3, 1, 1), ("l1 w->w 32x32 3x3 s1", w, w, 32, 3, 1, 4),
            ("l2 w->2w 32x32 3x3 s2", w, 2 * w, 32, 3, 2, 1), ("l2 2w->2w 16x16 3x3 s1", 2 * w, 2 * w, 16, 3, 1, 3),
            ("l2 short w->2w 1x1 s2", w, 2 * w, 32, 1, 2, 1), ("l3 2w->4w 16x16 3x3 s2", 2 * w, 4 * w, 16, 3, 2, 1),
            ("l3 4w->4w 8x8 3x3 s1", 4 * w, 4 * w, 8, 3, 1, 3), ("l3 short 2w->4w 1x1 s2", 2 * w, 4 * w, 16, 1, 2, 1),
            ("l4 4w->8w 8x8 3x3 s2", 4 * w, 8 * w, 8, 3, 2, 1), ("l4 8w->8w 4x4 3x3 s1", 8 * w, 8 * w, 4, 3, 1, 3),
            ("l4 short 4w->8w 1x1 s2", 4 * w, 8 * w, 8, 1, 2, 1)]


def torch_figures(batch, reps, threads, width):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {"torch_version": torch.__version__, "convs": [], "memory_bound": []}
    s1_flops = s1_time = 0.0
    for name, ic, oc, hw, k, s, count in layers(width):
        x = torch.randn(batch, ic, hw, hw)
        w = torch.randn(oc, ic, k, k) * 0.05
        y = torch.nn.functional.conv2d(x, w, None, s, k // 2)
        gy = torch.randn_like(y)
        flops = 2.0 * batch * oc * y.shape[2] * y.shape[3] * ic * k * k

        def bwd(mask):
            return torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [k // 2, k // 2], [1, 1], False,
                                                       [0, 0], 1, mask)
        tf = median_time(reps, lambda: torch.nn.functional.conv2d(x, w, None, s, k // 2))
        td = 0.0 if ic == 3 else median_time(reps, lambda: bwd([True, False, False]))
        tw = median_time(reps, lambda: bwd([False, True, False]))
        if s == 1 and k == 3 and ic != 3:
            s1_flops += 3 * flops * count
            s1_time += (tf + td + tw) * count
        out["convs"].append({"layer": name, "ms": [tf * 1e3, td * 1e3, tw * 1e3]})
    out["stride1_3x3_all_passes_gflops"] = s1_flops / s1_time / 1e9
    x = torch.randn(batch, width, 32, 32)
    bn = torch.nn.BatchNorm2d(width).train()
    xr = x.clone().requires_grad_()
    yb = bn(xr)
    gyb = torch.randn_like(yb)
    relu_y = torch.relu(x)
    ops = [("batch-norm fwd (train)", lambda: bn(x)),
           ("batch-norm bwd", lambda: torch.autograd.grad(yb, xr, gyb, retain_graph=True)),
           ("ReLU fwd", lambda: torch.relu(x)),
           ("ReLU bwd", lambda: torch.ops.aten.threshold_backward(x, relu_y, 0)),
           ("residual add", lambda: x + relu_y),
           ("max-pool 2x2 s2 fwd", lambda: torch.nn.functional.max_pool2d(x, 2, 2))]
    for name, fn in ops:
        out["memory_bound"].append({"op": name, "ms": median_time(reps, fn) * 1e3})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/bench_kernels")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("compare_torch.py: PyTorch is not installed (apt-get install python3-torch); nothing to compare")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    ours = json.loads(subprocess.run([a.bench, "--json", "--batch", str(a.batch), "--reps", str(a.reps), "--width",
                                      str(a.width)], check=True, capture_output=True, text=True, env=env).stdout)
    peer = torch_figures(a.batch, a.reps, a.threads, a.width)
    rows = []
    for o, p in zip(ours["convs"], peer["convs"]):
        ours_ms, torch_ms = sum(o["ms"]), sum(p["ms"])
        rows.append({"layer": o["layer"], "dearest_ms": ours_ms, "torch_ms": torch_ms, "speedup": torch_ms / ours_ms})
    mem = []
    for p in peer["memory_bound"]:
        o = next((m for m in ours["memory_bound"] if m["op"] == p["op"]), None)
        if o:
            mem.append({"op": p["op"], "dearest_ms": o["ms"], "torch_ms": p["ms"], "speedup": p["ms"] / o["ms"]})
    result = {"threads": a.threads, "batch": a.batch, "torch_version": peer["torch_version"],
              "sgemm_gflops": ours["sgemm_gflops"],
              "stride1_3x3_gflops": {"dearest": ours["stride1_3x3_all_passes_gflops"],
                                     "torch": peer["stride1_3x3_all_passes_gflops"]},
              "convs": rows, "memory_bound": mem}
    if a.json:
        print(json.dumps(result, indent=2))
        return
    print(f"PyTorch {peer['torch_version']} vs dearest, {a.threads} threads, batch {a.batch}, median of {a.reps}")
    print(f"SGEMM {ours['sgemm_gflops']:.1f} GFLOP/s; stride-1 3x3 convs fwd+bwd: dearest "
          f"{ours['stride1_3x3_all_passes_gflops']:.1f}, torch {peer['stride1_3x3_all_passes_gflops']:.1f} GFLOP/s")
    print(f"{'conv (fwd+bwd_d+bwd_w)':<26} {'dearest ms':>10} {'torch ms':>10} {'speedup':>8}")
    for r in rows:
        print(f"{r['layer']:<26} {r['dearest_ms']:10.1f} {r['torch_ms']:10.1f} {r['speedup']:8.2f}")
    print(f"{'memory-bound op':<26} {'dearest ms':>10} {'torch ms':>10} {'speedup':>8}")
    for m in mem:
        print(f"{m['op']:<26} {m['dearest_ms']:10.2f} {m['torch_ms']:10.2f} {m['speedup']:8.2f}")


if __name__ == "__main__":
    main()
