#!/usr/bin/python3
"""bench_torch.py [--model attn_cnn --batch 128 --threads 2 --steps N --warmup W]

PyTorch throughput on random data, for comparison with ctrain's benchmark:
training step (forward + backward + Adam step, train mode) and inference
(eval mode, no_grad) in images/s, each timed over N steps after W warm-up
steps, and the process's peak RSS. Prints one JSON line.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from models import build  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", default="attn_cnn")
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--warmup", type=int, default=5)
args = ap.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = build(args.model)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(args.batch, 3, 32, 32)
y = torch.randint(0, 10, (args.batch,))


def train_step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


def infer_step():
    with torch.no_grad():
        model(x)


def images_per_s(step):
    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * args.batch / (time.perf_counter() - t0)


model.train()
train_ips = images_per_s(train_step)
model.eval()
infer_ips = images_per_s(infer_step)
print(json.dumps({
    "impl": "pytorch", "model": args.model, "batch": args.batch, "threads": args.threads,
    "torch": torch.__version__,
    "train_images_per_s": round(train_ips, 1), "infer_images_per_s": round(infer_ips, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
