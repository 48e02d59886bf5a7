#!/usr/bin/python3
"""Smoke test of models.py: every model builds, runs a forward (and a backward),
has the state_dict names of MODELS.md and the parameter counts stated there
(attn_cnn, ultimus) or derived from its layers (the others)."""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import NAMES, build  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(2)
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


ATTN = 3 * conv(64, 64, 1)                      # channel attention, C=64
ATTN32 = 3 * conv(32, 32, 1)
VANILLA = conv(3, 64, 3) + conv(64, 32, 3) + 32 * 32 * 32 * 10 + 10
RES = (conv(3, 64, 7) + 2 * conv(64, 64, 3)
       + sum(conv(a, b, 3) + conv(b, b, 3) + conv(a, b, 1) + 2 * b
             for a, b in ((64, 128), (128, 256), (256, 512))) + 512 * 10 + 10)
EXPECTED_PARAMS = {
    "attn_cnn": 45236, "ultimus": 25488,        # stated in MODELS.md
    "cnn_vanilla": VANILLA, "cnn_early": VANILLA + ATTN, "cnn_late": VANILLA + ATTN32,
    "cnn_double": VANILLA + ATTN + ATTN32, "resnet10": RES, "resnet10_attn": RES + 3 * conv(128, 128, 1),
}

ATTN_CNN_KEYS = (
    [f"cnn.{i}.{p}" for i in (0, 2, 5) for p in ("weight", "bias")]
    + [f"cnn.{i}.{p}" for i in (1, 6) for p in
       ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    + [f"attn{i}.W_{c}.weight" for i in (1, 2) for c in "qkv"]
    + [f"norm{i}.{p}" for i in (1, 2) for p in ("weight", "bias")]
    + ["classifier.weight", "classifier.bias"])
EXPECTED_PREFIXES = {   # module prefixes (key minus its last field) that must appear
    "ultimus": {"conv1", "conv2", "conv3", "fc"} | {f"u{i}.{m}" for i in range(1, 5) for m in "KQV"}
    | {f"u{i}.out" for i in range(1, 5)},
    "cnn_vanilla": {"0", "2", "5"},
    "cnn_early": {"0", "2.conv_query", "2.conv_key", "2.conv_value", "4", "7"},
    "cnn_late": {"0", "2", "4.conv_query", "4.conv_key", "4.conv_value", "7"},
    "cnn_double": {"0", "2.conv_query", "4", "6.conv_value", "9"},
    "resnet10": {"conv1", "layer1.0.conv1", "layer1.0.conv2", "layer4.0.downsampler.0",
                 "layer4.0.downsampler.1", "fc"},
    "resnet10_attn": {"attention.conv_query", "attention.conv_key", "attention.conv_value"},
    "vit": {"patch_embed.proj", "head"} | {f"transformer.layers.5.{m}" for m in (
        "self_attn.query", "self_attn.key", "self_attn.value", "self_attn.proj",
        "ffn.fc1", "ffn.fc2", "norm_self", "norm_ffn")},
    "conv_vit": {"prep.conv", "prep.bn", "layer1.conv.conv", "layer1.res.1.bn", "layer2.conv.conv",
                 "layer3.res.0.conv", "head"} | {f"transformer.layers.0.{m}" for m in (
                     "self_attn.query", "self_attn.proj", "ffn.fc1", "norm_self", "norm_ffn")},
    "caption_transformer": {"visual_projection", "embedding", "output"} | {
        f"transformer.layers.1.{m}" for m in (
            "self_attn.query", "cross_attn.key", "cross_attn.proj", "ffn.fc1", "ffn.fc2",
            "norm_self", "norm_cross", "norm_ffn")},
}

for name in NAMES:
    model = build(name)
    sd = model.state_dict()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"-- {name}: {n_params:,} parameters, {len(sd)} state_dict entries")
    if name in EXPECTED_PARAMS:
        check(n_params == EXPECTED_PARAMS[name], f"{name} parameter count {n_params} == {EXPECTED_PARAMS[name]}")
    prefixes = {k.rsplit(".", 1)[0] for k in sd}
    missing = EXPECTED_PREFIXES.get(name, set()) - prefixes
    check(not missing, f"{name} state_dict has the MODELS.md modules (missing: {sorted(missing)})")
    check(not any(k.endswith((".mask", ".pe")) for k in sd), f"{name} constant buffers are not in state_dict")

    if name == "caption_transformer":
        feats, caps = torch.randn(3, 512), torch.randint(0, 1004, (3, 17))
        out = model(feats, caps[:, :-1])
        check(out.shape == (3, 16, 1004), f"{name} forward shape {tuple(out.shape)}")
        loss = model.loss(feats, caps)
        check(model.sample(feats, max_length=5).shape == (3, 5), f"{name} greedy sample runs")
    else:
        out = model(torch.randn(4, 3, 32, 32))
        check(out.shape == (4, 10), f"{name} forward shape {tuple(out.shape)}")
        loss = out.logsumexp(dim=1).mean()
    loss.backward()
    check(all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters()),
          f"{name} backward gives finite gradients for every parameter")

# attn_cnn: exact names, and a state_dict without the mask loads strictly.
model = build("attn_cnn")
sd = model.state_dict()
check(sorted(sd) == sorted(ATTN_CNN_KEYS), "attn_cnn state_dict names are exactly MODELS.md §1")
build("attn_cnn").load_state_dict(sd, strict=True)
x = torch.randn(2, 64, 64)
scores = model.attn1.W_q(x) @ model.attn1.W_k(x).transpose(1, 2) / 8 + model.attn1.mask
w = torch.softmax(scores, -1)
check(bool((w.triu(1) == 0).all()), "attn_cnn causal mask zeroes weights above the diagonal")

# Positional encoding: the ops_posenc formula at a few points.
pe = build("vit").positional_encoding.pe[0]
for i, j in ((0, 0), (0, 1), (1, 0), (1, 1), (7, 4), (15, 127)):
    e = j - j % 2
    want = (math.cos if j % 2 else math.sin)(i * 10000 ** (-e / 128))
    check(abs(pe[i, j].item() - want) < 1e-6, f"posenc P[{i},{j}] = {pe[i, j].item():.7f} (want {want:.7f})")

print("FAILED: %d check(s)" % len(failures) if failures else "all model checks passed")
sys.exit(1 if failures else 0)
