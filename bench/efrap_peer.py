#!/usr/bin/env python3
"""PyTorch peer for bench_efrap_speed: EFRAP's per-layer optimization on ResNet18-CIFAR written the
way the reference code runs it (MQBench's AdaRoundFakeQuantize forward: floor(W / s) + sigmoid(alpha),
clamp, dequantize; the unit conv -> BN (-> ReLU -> activation fake-quantizer); LossFunction's
rec + BCE flip penalty weighted by |W - Q(W)| + 0.01 round loss; Adam lr 1e-3 on alpha; one random
cached batch of 32 per iteration). Each layer caches its 32 input batches from the partly quantized
model and its float targets, runs --sample iterations after a warm-up, and the per-iteration time
is extrapolated to --iterations the same way bench_efrap_speed does; then both are run in this
session and the ratio printed.

    python3 bench/efrap_peer.py --bench build/bench/bench_efrap_speed [--width 64] [--sample 30] [--threads 2]
        [--conv direct,winograd] [--json]

Scales and zero points come from min/max ranges here (the reference searches them by MSE): that
changes no shape and no operation count, so not the time. Needs Debian's python3-torch (1.13);
used by benchmarks only.
"""
import argparse
import json
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet18(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        chans, cin, blocks = [w, 2 * w, 4 * w, 8 * w], w, []
        for i, c in enumerate(chans):
            for j in range(2):
                blocks.append(Block(cin, c, 2 if (i > 0 and j == 0) else 1))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(8 * w, 10)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.blocks(h)
        return self.fc(torch.flatten(F.avg_pool2d(h, 4), 1))


def affine_qparams(mn, mx, bits):
    qmax = 2 ** bits - 1
    mn, mx = torch.clamp(mn, max=0), torch.clamp(mx, min=0)
    s = torch.clamp((mx - mn) / qmax, min=1.1920929e-07)
    z = torch.clamp(-torch.round(mn / s), 0, qmax)
    return s, z, qmax


def units_of(model):
    """(layer, tail modules, consumer layer whose input quantizer ends the unit) in forward order."""
    out = [(model.conv1, [model.bn1, "relu"], "q")]
    for b in model.blocks:
        out.append((b.conv1, [b.bn1, "relu"], "q"))
        out.append((b.conv2, [b.bn2], None))
        if b.shortcut is not None:
            out.append((b.shortcut[0], [b.shortcut[1]], None))
    out.append((model.fc, [], None))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", help="bench_efrap_speed binary, run in the same session for the ratio")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--conv", default="direct",
                    help="dearest's convolution algorithms to time, comma-separated: direct, winograd")
    ap.add_argument("--sample", type=int, default=30)
    ap.add_argument("--iterations", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1005)
    model = ResNet18(a.width)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(32, 3, 32, 32))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    calib = [torch.randn(32, 3, 32, 32) for _ in range(32)]
    units = units_of(model)
    layers = [u[0] for u in units]
    first, last = layers[0], layers[-1]

    # Activation quantizers at every layer input (8 bits at the first and last), from calibration ranges.
    act = {}
    state = {"quant_acts": False, "capture": None, "cache": None}

    def make_pre_hook(layer):
        def hook(mod, inp):
            x = inp[0]
            if state["quant_acts"] and layer in act:
                s, z, qmax = act[layer]
                x = torch.fake_quantize_per_tensor_affine(x, float(s), int(z), 0, qmax)
            if state["capture"] is layer:
                state["cache"].append(x.detach())
                raise StopIteration
            return (x,)
        return hook

    ranges = {}

    def make_range_hook(layer):
        def hook(mod, inp):
            x = inp[0]
            mn, mx = x.min(), x.max()
            if layer in ranges:
                ranges[layer] = (torch.minimum(ranges[layer][0], mn), torch.maximum(ranges[layer][1], mx))
            else:
                ranges[layer] = (mn, mx)
        return hook

    hs = [l.register_forward_pre_hook(make_range_hook(l)) for l in layers]
    with torch.no_grad():
        for b in calib:
            model(b)
    for h in hs:
        h.remove()
    for l in layers:
        act[l] = affine_qparams(ranges[l][0], ranges[l][1], 8 if l in (first, last) else a.bits)
    for l in layers:
        l.register_forward_pre_hook(make_pre_hook(l))

    # Weight quantizers (per output channel, affine), applied to the quantized copy's weights.
    wq = {}
    for l in layers:
        w = l.weight
        bits = 8 if l in (first, last) else a.bits
        flat = w.reshape(w.shape[0], -1)
        s, z, qmax = affine_qparams(flat.min(1).values, flat.max(1).values, bits)
        wq[l] = (s, z, qmax)
    float_w = {l: l.weight.detach().clone() for l in layers}
    learned = {}

    def set_weights(quantized):
        for l in layers:
            if not quantized:
                l.weight.data.copy_(float_w[l])
            elif l in learned:
                l.weight.data.copy_(learned[l])
            else:
                s, z, qmax = wq[l]
                l.weight.data.copy_(torch.fake_quantize_per_channel_affine(float_w[l], s, z.int(), 0, 0, qmax))

    def cache_inputs(layer, quantized):
        set_weights(quantized)
        state["quant_acts"], state["capture"], state["cache"] = quantized, layer, []
        with torch.no_grad():
            for b in calib:
                try:
                    model(b)
                except StopIteration:
                    pass
        state["capture"] = None
        return state["cache"]

    def run_tail(y, tail, quant_layer):
        for t in tail:
            y = F.relu(y) if t == "relu" else t(y)
        if quant_layer is not None:
            s, z, qmax = quant_layer
            y = torch.fake_quantize_per_tensor_affine(y, float(s), int(z), 0, qmax)
        return y

    def layer_fn(layer, x, w):
        if isinstance(layer, nn.Linear):
            return F.linear(x, w, layer.bias)
        return F.conv2d(x, w, None, layer.stride, layer.padding)

    results, total = [], 0.0
    for li, (layer, tail, q_end) in enumerate(units):
        t0 = time.perf_counter()
        xq = cache_inputs(layer, True)
        xf = cache_inputs(layer, False)
        consumer = units[li + 1][0] if q_end else None
        with torch.no_grad():
            tgt = [run_tail(layer_fn(layer, x, float_w[layer]), tail, None) for x in xf]
        s, z, qmax = wq[layer]
        shape = [-1] + [1] * (float_w[layer].dim() - 1)
        s_, z_ = s.reshape(shape), z.reshape(shape)
        W = float_w[layer]
        x_floor = torch.floor(W / s_)
        rest = W / s_ - x_floor
        alpha = nn.Parameter(-torch.log(1 / rest - 1))
        target_round = 1 - torch.round(rest)
        err = (W - torch.fake_quantize_per_channel_affine(W, s, z.int(), 0, 0, qmax)).abs()
        opt = torch.optim.Adam([alpha], lr=1e-3)
        setup = time.perf_counter() - t0

        def step():
            idx = int(torch.randint(0, len(xq), (1,)))
            opt.zero_grad()
            h = torch.sigmoid(alpha)
            wt = (torch.clamp(x_floor + h + z_, 0, qmax) - z_) * s_
            out = run_tail(layer_fn(layer, xq[idx], wt), tail, act[consumer] if consumer is not None else None)
            rec = (out - tgt[idx]).abs().pow(2).sum(1).mean()
            pen = (err * -(target_round * torch.log(h + 1e-8) + (1 - target_round) * torch.log(1 - h + 1e-8))).sum()
            rnd = 0.01 * (1 - ((h - 0.5).abs() * 2).pow(2)).sum()
            (rec + pen + rnd).backward()
            opt.step()

        for _ in range(3):
            step()
        t1 = time.perf_counter()
        for _ in range(a.sample):
            step()
        per = (time.perf_counter() - t1) / a.sample
        learned[layer] = ((torch.clamp(x_floor + (alpha.detach() >= 0).float() + z_, 0, qmax) - z_) * s_)
        ext = setup + per * a.iterations
        total += ext
        results.append({"layer": li, "setup_seconds": setup, "ms_per_iteration": 1e3 * per, "extrapolated_seconds": ext})
        if not a.json:
            print(f"layer {li:2d} {type(layer).__name__:6s} setup {setup:6.2f} s  {1e3 * per:8.2f} ms/iter  ~{ext:7.0f} s",
                  file=sys.stderr)
    peer = {"bench": "efrap_peer", "torch": torch.__version__, "width": a.width, "threads": a.threads,
            "sample_iterations": a.sample, "iterations": a.iterations, "extrapolated_seconds": total, "layers": results}
    out = {"peer": peer}
    if a.bench:
        # dearest once per convolution algorithm asked for; "dearest" and "ratio" are the first's
        out["by_conv"] = {}
        for conv in a.conv.split(","):
            r = subprocess.run([a.bench, "--width", str(a.width), "--sample", str(a.sample), "--iterations",
                                str(a.iterations), "--threads", str(a.threads), "--conv", conv, "--json"],
                               check=True, capture_output=True, text=True)
            ours = json.loads(r.stdout)
            out["by_conv"][conv] = {"dearest": ours, "ratio": total / ours["extrapolated_seconds"]}
        first = out["by_conv"][a.conv.split(",")[0]]
        out["dearest"] = first["dearest"]
        out["ratio"] = first["ratio"]
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"PyTorch {torch.__version__} peer: {total:.0f} s = {total / 3600:.2f} h extrapolated")
        if a.bench:
            for conv, v in out["by_conv"].items():
                d = v["dearest"]["extrapolated_seconds"]
                print(f"dearest ({conv} convolutions): {d:.0f} s = {d / 3600:.2f} h; dearest is {v['ratio']:.2f}x faster")


if __name__ == "__main__":
    main()
