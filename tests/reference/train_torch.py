#!/usr/bin/python3
"""train_torch.py --data DATASET.h5 [recipe flags] -- train a models.py model in
PyTorch on a ctrain HDF5 dataset, for the README comparison with ctrain.

Dataset: /train/images uint8 (N,3,32,32), /train/labels int32, the same under
/val (optional) and /test; root attrs classes, mean, std (float64[3], 0..1 scale).

Recipe: the optimizer and schedule are stepped per batch (cosine anneals to 0
over epochs x batches; the seed of attn_cnn stepped per epoch, --schedule-unit
epoch does that). Augmentation on the 0..1 image before normalisation, in this
order: crop (pad 4 with zeros, random 32x32 crop), flip (horizontal, p 0.5),
rotate (uniform +-5 degrees, nearest, zero fill, as torchvision's
RandomRotation(5)), cutout (p 0.5, one 16x16 square inside the image filled with
the dataset mean). The last partial training batch is dropped.

Prints one line per epoch (train loss, val accuracy, training images/s) and
at the end one JSON line with the test accuracy and the wall time.
"""
import argparse
import json
import math
import os
import sys
import time

import h5py
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="attn_cnn")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3, help="base lr (cosine, constant) or max_lr (onecycle)")
    ap.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"))
    ap.add_argument("--beta1", type=float, default=0.9, help="Adam beta1 / SGD momentum")
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--schedule", default="cosine", choices=("cosine", "onecycle", "constant"))
    ap.add_argument("--schedule-unit", default="step", choices=("step", "epoch"))
    ap.add_argument("--pct-start", type=float, default=0.3)
    ap.add_argument("--div-factor", type=float, default=25.0)
    ap.add_argument("--final-div-factor", type=float, default=1e4)
    ap.add_argument("--anneal", default="cos", choices=("cos", "linear"))
    ap.add_argument("--augment", default="crop,flip,rotate",
                    help="comma list of crop, flip, rotate, cutout; 'none' for none")
    ap.add_argument("--warmup", type=int, default=0,
                    help="linear warm-up steps: the schedule's rate times (t+1)/warmup (ctrain's train.warmup_steps)")
    ap.add_argument("--no-normalize", action="store_true", help="images on 0..1 only (data.normalize = false)")
    ap.add_argument("--clip", type=float, default=0.0, help="clip the gradient norm to this (0: off)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    return ap.parse_args()


def augment(x, kinds, mean, gen):
    """x: float (B,3,32,32) on the 0..1 scale."""
    b, _, h, w = x.shape
    if "crop" in kinds:
        xp = F.pad(x, (4, 4, 4, 4))
        oy, ox = (torch.randint(0, 9, (b,), generator=gen) for _ in range(2))
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
        x = xp[torch.arange(b)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
    if "flip" in kinds:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if "rotate" in kinds:
        a = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(5)
        theta = torch.stack([torch.stack([a.cos(), -a.sin(), torch.zeros(b)], 1),
                             torch.stack([a.sin(), a.cos(), torch.zeros(b)], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if "cutout" in kinds:
        on = torch.rand(b, generator=gen) < 0.5
        y0, x0 = (torch.randint(0, h - 16 + 1, (b,), generator=gen) for _ in range(2))
        ys, xs = torch.arange(h), torch.arange(w)
        inside = (((ys[None] >= y0[:, None]) & (ys[None] < y0[:, None] + 16))[:, :, None]
                  & ((xs[None] >= x0[:, None]) & (xs[None] < x0[:, None] + 16))[:, None, :])
        x = torch.where((inside & on[:, None, None])[:, None], mean, x)
    return x


def accuracy(model, images, labels, mean, std):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), 1000):
            x = (images[i:i + 1000].float() / 255 - mean) / std
            correct += (model(x).argmax(1) == labels[i:i + 1000]).sum().item()
    model.train()
    return 100.0 * correct / max(len(images), 1)


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    kinds = set() if args.augment == "none" else set(args.augment.split(","))
    unknown = kinds - {"crop", "flip", "rotate", "cutout"}
    if unknown:
        sys.exit(f"unknown augmentation(s): {', '.join(sorted(unknown))}")

    t_start = time.time()
    with h5py.File(args.data, "r") as f:
        mean = torch.tensor(f.attrs["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(f.attrs["std"], dtype=torch.float32).view(1, 3, 1, 1)
        if args.no_normalize:
            mean, std = torch.zeros_like(mean), torch.ones_like(std)
        split = {s: (torch.from_numpy(f[f"{s}/images"][()]), torch.from_numpy(f[f"{s}/labels"][()]).long())
                 for s in ("train", "val", "test") if s in f}
    train_x, train_y = split["train"]
    if args.limit:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    steps_per_epoch = len(train_x) // args.batch
    if steps_per_epoch == 0:
        sys.exit(f"{len(train_x)} training images is less than one batch of {args.batch}")

    model = build(args.model)
    params = model.parameters()
    betas = (args.beta1, args.beta2)
    if args.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=args.lr, betas=betas, weight_decay=args.weight_decay)
    elif args.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=args.lr, betas=betas, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=args.lr, momentum=args.beta1, weight_decay=args.weight_decay)
    total = args.epochs * (steps_per_epoch if args.schedule_unit == "step" else 1)
    if args.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    elif args.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=args.lr, total_steps=total, pct_start=args.pct_start, anneal_strategy=args.anneal,
            div_factor=args.div_factor, final_div_factor=args.final_div_factor)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    if args.warmup > 0:
        if args.schedule == "onecycle":
            sys.exit("--warmup with onecycle: OneCycle has its own warm-up")
        shape = sched.lr_lambdas[0] if args.schedule == "constant" else (
            lambda t: 0.5 * (1 + math.cos(math.pi * t / total)))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: shape(t) * min(1.0, (t + 1) / args.warmup))
    print(f"{args.model}: {sum(p.numel() for p in model.parameters()):,} parameters; {len(train_x)} train "
          f"images, {steps_per_epoch} steps/epoch; augment {sorted(kinds) or 'none'}; {args.threads} threads",
          flush=True)

    best_val, val_acc, train_time = 0.0, float("nan"), 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = torch.randperm(len(train_x), generator=gen)
        loss_sum = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * args.batch:(i + 1) * args.batch]
            x = augment(train_x[idx].float() / 255, kinds, mean, gen)
            loss = F.cross_entropy(model((x - mean) / std), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            lr_used = opt.param_groups[0]["lr"]
            if args.schedule_unit == "step":
                sched.step()
            loss_sum += loss.item()
        if args.schedule_unit == "epoch":
            sched.step()
        dt = time.time() - t0
        train_time += dt
        if "val" in split:
            val_acc = accuracy(model, *split["val"], mean, std)
            best_val = max(best_val, val_acc)
        print(f"epoch {epoch}/{args.epochs} last_lr {lr_used:.3g} train_loss "
              f"{loss_sum / steps_per_epoch:.4f} val_acc {val_acc:.2f}% "
              f"{steps_per_epoch * args.batch / dt:.0f} img/s", flush=True)

    test_acc = accuracy(model, *split["test"], mean, std)
    print(json.dumps({
        "impl": "pytorch", "model": args.model, "epochs": args.epochs, "batch": args.batch,
        "threads": args.threads, "test_acc": round(test_acc, 2), "final_val_acc": round(val_acc, 2),
        "best_val_acc": round(best_val, 2),
        "train_images_per_s": round(args.epochs * steps_per_epoch * args.batch / train_time, 1),
        "wall_s": round(time.time() - t_start, 1)}))


if __name__ == "__main__":
    main()
