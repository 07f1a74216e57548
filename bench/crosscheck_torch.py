#!/usr/bin/env python3
"""Cross-checks `dearest probe` against PyTorch for model shapes the shipped fixtures do not cover:
ResNet18 with the CIFAR stem (several widths, class counts, 32 and 64 px inputs) and with the
ImageNet stem (torchvision's), VGG16 with and without BN. For each: random weights and batch,
PyTorch's train-mode logits, loss, every parameter gradient and the running statistics after the
step, compared with dearest's (fixtures/README.md tolerances: logits/loss 1e-4 relative, gradients
1e-3 relative to each tensor's largest element).

    python3 bench/crosscheck_torch.py [--dearest build/tools/dearest]

Needs Debian's python3-torch; only benchmarks and cross-checks use Python, never the product.
"""
import argparse, json, os, struct, subprocess, sys, tempfile
import torch, torch.nn as nn, torch.nn.functional as F


def save_st(path, tensors, meta=None):
    header, blobs, at = {}, [], 0
    for k, t in tensors.items():
        t = t.detach().contiguous()
        dt = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        b = t.numpy().tobytes()
        header[k] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b); at += len(b)
    if meta: header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]


def load_st(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        dt = {"F32": torch.float32, "I32": torch.int32, "F64": torch.float64}[v["dtype"]]
        out[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=dt).reshape(v["shape"])
    return out


class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.downsample = nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o)) if st != 1 or i != o else None
    def forward(s, x):
        h = F.relu(s.bn1(s.conv1(x))); h = s.bn2(s.conv2(h))
        return F.relu(h + (s.downsample(x) if s.downsample is not None else x))


class ResNet18(nn.Module):
    def __init__(s, w, classes, stem, inp):
        super().__init__(); s.stem = stem
        s.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False) if stem == "imagenet" else nn.Conv2d(3, w, 3, 1, 1, bias=False)
        s.bn1 = nn.BatchNorm2d(w)
        s.maxpool = nn.MaxPool2d(3, 2, 1)
        i = w
        for l, o in enumerate([w, 2 * w, 4 * w, 8 * w]):
            setattr(s, "layer%d" % (l + 1), nn.Sequential(Block(i, o, 1 if l == 0 else 2), Block(o, o, 1))); i = o
        feat = 8 * w if stem == "imagenet" else 8 * w * (inp // 32) ** 2
        s.fc = nn.Linear(feat, classes)
    def forward(s, x):
        h = F.relu(s.bn1(s.conv1(x)))
        if s.stem == "imagenet": h = s.maxpool(h)
        for l in range(4): h = getattr(s, "layer%d" % (l + 1))(h)
        h = F.adaptive_avg_pool2d(h, 1) if s.stem == "imagenet" else F.avg_pool2d(h, 4)
        return s.fc(torch.flatten(h, 1))


class VGG16(nn.Module):
    def __init__(s, w, classes, bn, inp):
        super().__init__(); layers, i = [], 3
        for c in [1, 1, 0, 2, 2, 0, 4, 4, 4, 0, 8, 8, 8, 0, 8, 8, 8, 0]:
            if c == 0: layers.append(nn.MaxPool2d(2, 2)); continue
            layers.append(nn.Conv2d(i, c * w, 3, 1, 1))
            if bn: layers.append(nn.BatchNorm2d(c * w))
            layers.append(nn.ReLU()); i = c * w
        s.features = nn.Sequential(*layers); s.classifier = nn.Linear(8 * w * (inp // 32) ** 2, classes)
    def forward(s, x): return s.classifier(torch.flatten(s.features(x), 1))


def rel(a, b, floor=1e-30):
    return float((a - b).abs().max() / max(float(b.abs().max()), floor))


def check(dearest, spec, model, batch, inp, classes, tmp):
    torch.manual_seed(1)
    for p in model.parameters():  # non-trivial BN affine parameters and biases
        if p.dim() == 1: p.data.uniform_(-0.5, 1.5)
    x = torch.randn(batch, 3, inp, inp); y = torch.randint(0, classes, (batch,))
    sd = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    save_st(os.path.join(tmp, "w.safetensors"), sd)
    save_st(os.path.join(tmp, "in.safetensors"), {"input": x, "labels": y})
    subprocess.run([dearest, "probe", "--model", os.path.join(tmp, "w.safetensors"), "--arch", spec, "--input",
                    os.path.join(tmp, "in.safetensors"), "--out", os.path.join(tmp, "out.safetensors")],
                   check=True, capture_output=True)
    got = load_st(os.path.join(tmp, "out.safetensors"))
    model.train(); logits = model(x); loss = F.cross_entropy(logits, y); loss.backward()
    worst = {"logits": rel(got["logits"], logits.detach()), "loss": rel(got["loss"], loss.detach().reshape(1))}
    # A conv bias feeding a training-mode BN has gradient 0 in exact arithmetic (float noise in
    # both frameworks, summed in different orders): each tensor's scale is floored at 1% of the model's
    # largest gradient, i.e. such a tensor must agree to 1e-5 of that scale in absolute terms.
    gmax = max(float(p.grad.abs().max()) for p in model.parameters())
    errs = {n: rel(got["grad." + n], p.grad, 1e-2 * gmax) for n, p in model.named_parameters()}
    worst["grad"] = max(errs.values())
    if worst["grad"] >= 1e-3: print("   worst gradients:", sorted(errs.items(), key=lambda kv: -kv[1])[:3], "gmax", gmax)
    worst["running"] = max([rel(got[n], b) for n, b in model.named_buffers() if "num_batches" not in n] or [0.0])
    ok = worst["logits"] < 1e-4 and worst["loss"] < 1e-4 and worst["grad"] < 1e-3 and worst["running"] < 1e-4
    print(f"{'ok  ' if ok else 'FAIL'} {spec:<52} logits {worst['logits']:.1e}  loss {worst['loss']:.1e}  "
          f"grads {worst['grad']:.1e}  running stats {worst['running']:.1e}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dearest", default="build/tools/dearest")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cases = [("resnet18:width=8,classes=10", lambda: ResNet18(8, 10, "cifar", 32), 4, 32, 10),
             ("resnet18:width=16,classes=100", lambda: ResNet18(16, 100, "cifar", 32), 3, 32, 100),
             ("resnet18:width=4,classes=200,input=64", lambda: ResNet18(4, 200, "cifar", 64), 2, 64, 200),
             ("resnet18:width=8,classes=10,stem=imagenet", lambda: ResNet18(8, 10, "imagenet", 32), 4, 32, 10),
             ("resnet18:width=4,classes=10,stem=imagenet,input=224", lambda: ResNet18(4, 10, "imagenet", 224), 2, 224, 10),
             ("vgg16-bn:width=8,classes=10", lambda: VGG16(8, 10, True, 32), 4, 32, 10),
             ("vgg16-bn:width=4,classes=200,input=64", lambda: VGG16(4, 200, True, 64), 2, 64, 200),
             ("vgg16:width=8,classes=10", lambda: VGG16(8, 10, False, 32), 4, 32, 10)]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for spec, make, batch, inp, classes in cases:
            ok &= check(a.dearest, spec, make(), batch, inp, classes, tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
