#!/usr/bin/python3
"""bench_caption_torch.py [--batch 100 --threads 2 --steps N --warmup W]

PyTorch's side of the captioning benchmark (run_caption.sh): training steps
(forward, backward, Adam, train mode with dropout) of the caption_transformer
of tests/reference/models.py (MODELS.md §5: width 256, 2 heads, 2 layers,
FFN 2048, 1004 words, 512-d features, captions of 17 tokens) on random data,
in caption tokens per second (batch x 16 positions), and peak RSS. Prints one
JSON line.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from models import CaptionTransformer  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--batch", type=int, default=100)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--width", type=int, default=256)
ap.add_argument("--heads", type=int, default=2)
ap.add_argument("--layers", type=int, default=2)
ap.add_argument("--ffn", type=int, default=2048)
ap.add_argument("--vocab", type=int, default=1004)
ap.add_argument("--features", type=int, default=512)
args = ap.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
T = 17
model = CaptionTransformer(vocab=args.vocab, input_dim=args.features, wordvec_dim=args.width,
                           heads=args.heads, layers=args.layers, ffn=args.ffn, dropout=0.1,
                           max_length=T)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
features = torch.rand(args.batch, args.features) * 2 - 1
# captions of 6..14 random words: <START> w.. <END> <NULL>..
captions = torch.zeros(args.batch, T, dtype=torch.long)
for r in range(args.batch):
    n = int(torch.randint(6, 15, ()))
    captions[r, 0] = 1
    captions[r, 1:n + 1] = torch.randint(4, args.vocab, (n,))
    captions[r, n + 1] = 2


def step():
    opt.zero_grad(set_to_none=True)
    model.loss(features, captions).backward()
    opt.step()


model.train()
for _ in range(args.warmup):
    step()
t0 = time.perf_counter()
for _ in range(args.steps):
    step()
tokens_per_s = args.steps * args.batch * (T - 1) / (time.perf_counter() - t0)
print(json.dumps({
    "impl": "pytorch", "model": "caption_transformer", "batch": args.batch, "threads": args.threads,
    "torch": torch.__version__, "tokens_per_step": args.batch * (T - 1),
    "train_tokens_per_s": round(tokens_per_s, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
