#!/usr/bin/python3
"""make_fake_dump.py OUT.h5 [--perturb KIND] -- a parity dump made by PyTorch itself,
to test parity.py without ctrain.

The "other implementation" is the same model run in float64 and rounded to
float32 on output: its numbers differ from parity.py's float32 run by float32
rounding only, like ctrain's should. An unperturbed dump must PASS; each
--perturb plants one bug parity.py must FAIL on:
  grad       one step-0 gradient element off by 1%
  lr         the optimizer runs with lr x 1.05
  bn         BatchNorm momentum 0.2 instead of 0.1 (running statistics)
  mask       the attention causal mask left out (forward pass)
  zero_bias  a zero-gradient conv bias moved by 2 S lr (the bounded drift)
"""
import argparse
import copy
import os
import sys

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402
from parity import make_optimizer  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("out")
ap.add_argument("--model", default="attn_cnn")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"))
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--weight-decay", type=float, default=0.0)
ap.add_argument("--perturb", default="none", choices=("none", "grad", "lr", "bn", "mask", "zero_bias"))
args = ap.parse_args()
b1, b2, eps = 0.9, 0.999, 1e-8

torch.manual_seed(args.seed)
torch.set_num_threads(2)
model = build(args.model)
init = {k: v.clone() for k, v in model.state_dict().items()}
x = torch.randn(args.batch, 3, 32, 32)
y = torch.randint(0, 10, (args.batch,), dtype=torch.int32)

m64 = copy.deepcopy(model).double().train()
for m in m64.modules():
    if isinstance(m, nn.Dropout):
        m.p = 0.0
    if args.perturb == "bn" and isinstance(m, nn.BatchNorm2d):
        m.momentum = 0.2
    if args.perturb == "mask" and hasattr(m, "mask"):
        m.mask.zero_()
lr = args.lr * (1.05 if args.perturb == "lr" else 1.0)
opt = make_optimizer(args.optimizer, m64.parameters(), lr, b1, b2, eps, args.weight_decay)
losses = []
for s in range(args.steps):
    opt.zero_grad()
    loss = F.cross_entropy(m64(x.double()), y.long())
    loss.backward()
    losses.append(loss.item())
    if s == 0:
        grads = {k: p.grad.float().clone() for k, p in m64.named_parameters()}
    opt.step()
final = {k: v.float() if v.is_floating_point() else v for k, v in m64.state_dict().items()}

if args.perturb == "grad":   # the largest element of the largest weight gradient
    g = max((g for k, g in grads.items() if g.dim() > 1), key=lambda g: g.numel()).view(-1)
    g[g.abs().argmax()] *= 1.01
if args.perturb == "zero_bias":
    k = min(grads, key=lambda k: grads[k].norm())
    final[k] = init[k] + 2 * args.steps * args.lr

with h5py.File(args.out, "w") as f:
    for key, val in dict(model=args.model, steps=args.steps, optimizer=args.optimizer, lr=args.lr,
                         beta1=b1, beta2=b2, eps=eps, weight_decay=args.weight_decay).items():
        f.attrs[key] = val
    for group, tensors in (("init", init), ("grad", grads), ("final", final)):
        for k, v in tensors.items():
            f[f"{group}/{k}"] = v.numpy()
    f["batch/x"] = x.numpy()
    f["batch/y"] = y.numpy()
    f["losses"] = torch.tensor(losses, dtype=torch.float32).numpy()
print(f"wrote {args.out} ({args.model}, perturb {args.perturb})")
