#!/usr/bin/python3
"""bench_torch.py [--model attn_cnn --batch 128 --threads 2 --steps N --warmup W
                [--mode eager|channels_last|compile]]

PyTorch throughput on random data, for comparison with ctrain's benchmark:
training step (forward + backward + Adam step, train mode) and inference
(eval mode, no_grad) in images/s, each timed over N steps after W warm-up
steps, and the process's peak RSS. Prints one JSON line.

--mode eager (default) runs the module as built; channels_last converts the
model and the input to torch.channels_last (NHWC, which oneDNN's CPU
convolutions prefer); compile wraps the model in torch.compile (inductor,
PyTorch >= 2.0, needs a C++ compiler). Under compile the first train step and
the first inference step are timed on their own and reported apart as
compile_s_train and compile_s_infer (compilation plus that one step), then the
usual warm-up and timed steps follow, so the throughput is the warm one.
If a mode fails, the JSON line carries "error" (the exception's last line)
and the exit status is 1.
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
ap.add_argument("--mode", default="eager", choices=("eager", "channels_last", "compile"))
args = ap.parse_args()

record = {"impl": "pytorch", "mode": args.mode, "model": args.model, "batch": args.batch,
          "threads": args.threads, "torch": torch.__version__, "torch_version": torch.__version__}


def emit(**fields):
    record.update(fields)
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(record), flush=True)


torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = build(args.model)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(args.batch, 3, 32, 32)
y = torch.randint(0, 10, (args.batch,))
if args.mode == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
# The optimizer holds the same Parameter objects: .to(memory_format) converts
# them in place (param.data), and torch.compile wraps without copying.
net = model
if args.mode == "compile":
    if not hasattr(torch, "compile"):
        emit(error=f"torch {torch.__version__} has no torch.compile (needs >= 2.0)")
        print(f"bench_torch.py: torch {torch.__version__} has no torch.compile", file=sys.stderr)
        sys.exit(1)
    net = torch.compile(model)


def train_step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    opt.step()


def infer_step():
    with torch.no_grad():
        net(x)


def first_step_s(step):
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def images_per_s(step):
    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * args.batch / (time.perf_counter() - t0)


compile_s = {}
try:
    model.train()
    if args.mode == "compile":
        compile_s["compile_s_train"] = round(first_step_s(train_step), 2)
    train_ips = images_per_s(train_step)
    # eval() flips the modules' training flag, which torch.compile guards on:
    # the first inference step recompiles (eval-mode BatchNorm, no autograd).
    model.eval()
    if args.mode == "compile":
        compile_s["compile_s_infer"] = round(first_step_s(infer_step), 2)
    infer_ips = images_per_s(infer_step)
except Exception as e:  # noqa: BLE001 - any failure of the mode is the result
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    msg = f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]
    emit(error=msg, **compile_s)
    print(f"bench_torch.py: {args.model} {args.mode}: {msg}", file=sys.stderr)
    sys.exit(1)
emit(train_images_per_s=round(train_ips, 1), infer_images_per_s=round(infer_ips, 1), **compile_s)
