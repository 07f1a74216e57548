#!/usr/bin/env python3
"""Training and inference speed and peak memory of dearest against PyTorch on the same machine,
same thread count, same run: ResNet18-CIFAR and VGG16-BN-CIFAR at full width (64), training with
Adam at batch 128, inference at batch 256. Every measurement runs in its own process (so peak RSS
belongs to one model and one framework); dearest and PyTorch alternate, --rounds times, and the
medians are compared.

    python3 bench/compare_torch_train.py [--bench build/bench/bench_train_speed] [--threads 2] [--rounds 3]

Needs Debian's python3-torch (1.13, on the same oneDNN 2.6.3).
"""
import argparse, json, os, statistics, subprocess, sys

TORCH_CHILD = r'''
import json, resource, sys, time, torch, torch.nn as nn, torch.nn.functional as F
name, batch, ibatch, steps, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads); torch.manual_seed(0)
class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__(); s.conv1=nn.Conv2d(i,o,3,st,1,bias=False); s.bn1=nn.BatchNorm2d(o); s.conv2=nn.Conv2d(o,o,3,1,1,bias=False); s.bn2=nn.BatchNorm2d(o)
        s.downsample = nn.Sequential(nn.Conv2d(i,o,1,st,bias=False), nn.BatchNorm2d(o)) if st!=1 or i!=o else None
    def forward(s,x):
        h=F.relu(s.bn1(s.conv1(x))); h=s.bn2(s.conv2(h)); return F.relu(h+(s.downsample(x) if s.downsample is not None else x))
class R(nn.Module):
    def __init__(s,w=64):
        super().__init__(); s.conv1=nn.Conv2d(3,w,3,1,1,bias=False); s.bn1=nn.BatchNorm2d(w); i=w
        for l,o in enumerate([w,2*w,4*w,8*w]): setattr(s,'layer%d'%(l+1), nn.Sequential(Block(i,o,1 if l==0 else 2), Block(o,o,1))); i=o
        s.fc=nn.Linear(8*w,10)
    def forward(s,x):
        h=F.relu(s.bn1(s.conv1(x)))
        for l in range(4): h=getattr(s,'layer%d'%(l+1))(h)
        return s.fc(torch.flatten(F.avg_pool2d(h,4),1))
def vgg(w=64):
    L, i = [], 3
    for c in [1,1,0,2,2,0,4,4,4,0,8,8,8,0,8,8,8,0]:
        if c == 0: L.append(nn.MaxPool2d(2,2)); continue
        L += [nn.Conv2d(i,c*w,3,1,1), nn.BatchNorm2d(c*w), nn.ReLU()]; i = c*w
    return nn.Sequential(*L, nn.Flatten(), nn.Linear(8*w, 10))
m = R() if name.startswith('resnet') else vgg()
x = torch.randn(batch,3,32,32); y = torch.randint(0,10,(batch,)); opt = torch.optim.Adam(m.parameters())
def step():
    opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
m.train(); step(); tr=[]
for _ in range(reps):
    t=time.perf_counter()
    for _ in range(steps): step()
    tr.append(batch*steps/(time.perf_counter()-t))
m.eval(); xi=torch.randn(ibatch,3,32,32); inf=[]
with torch.no_grad():
    m(xi)
    for _ in range(reps):
        t=time.perf_counter(); n=max(1,steps//2)
        for _ in range(n): m(xi)
        inf.append(ibatch*n/(time.perf_counter()-t))
tr.sort(); inf.sort()
print(json.dumps({"framework": "pytorch " + torch.__version__, "train_images_per_second": tr[len(tr)//2],
                  "infer_images_per_second": inf[len(inf)//2], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/bench_train_speed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    results = {}
    for name, spec in [("resnet18-cifar", "resnet18:width=64"), ("vgg16-bn-cifar", "vgg16-bn:width=64")]:
        runs = {"dearest": [], "pytorch": []}
        for _ in range(a.rounds):
            o = subprocess.run([a.bench, "--model", spec, "--steps", str(a.steps), "--json"], env=env, check=True,
                               capture_output=True, text=True).stdout
            runs["dearest"].append(json.loads(o))
            o = subprocess.run([sys.executable, "-c", TORCH_CHILD, name, "128", "256", str(a.steps), "3", str(a.threads)],
                               env=env, check=True, capture_output=True, text=True).stdout
            runs["pytorch"].append(json.loads(o))
        med = {f: {k: statistics.median(r[k] for r in runs[f]) for k in
                   ["train_images_per_second", "infer_images_per_second", "peak_rss_mib"]} for f in runs}
        med["ratios"] = {"train": med["dearest"]["train_images_per_second"] / med["pytorch"]["train_images_per_second"],
                         "inference": med["dearest"]["infer_images_per_second"] / med["pytorch"]["infer_images_per_second"],
                         "peak_rss": med["dearest"]["peak_rss_mib"] / med["pytorch"]["peak_rss_mib"]}
        med["pytorch_version"] = runs["pytorch"][0]["framework"]
        med["all_runs"] = runs
        results[name] = med
    if a.json:
        print(json.dumps(results, indent=2)); return
    print(f"{a.threads} threads, median of {a.rounds} alternating rounds (each in its own process)")
    print(f"{'model':<16} {'':<8} {'train img/s':>12} {'infer img/s':>12} {'peak RSS MiB':>13}")
    for name, r in results.items():
        for f in ["dearest", "pytorch"]:
            d = r[f]
            print(f"{name:<16} {f:<8} {d['train_images_per_second']:12.1f} {d['infer_images_per_second']:12.1f} {d['peak_rss_mib']:13.0f}")
        q = r["ratios"]
        print(f"{name:<16} {'ratio':<8} {q['train']:11.2f}x {q['inference']:11.2f}x {q['peak_rss']:12.2f}x")


if __name__ == "__main__":
    main()
