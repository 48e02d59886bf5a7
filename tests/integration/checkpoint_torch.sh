#!/bin/sh
# max_steps = 0 writes a checkpoint of the initial parameters, which PyTorch
# loads with load_state_dict(strict=True) through h5py (the README's recipe).
# usage: checkpoint_torch.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/d.h5" --train 300 --test 100 --seed 1
"$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.max_steps=0 --set run.dir="$tmp/run" > "$tmp/out.txt"
ckpt=$(sed -n 's/^checkpoint: //p' "$tmp/out.txt")
PYTHONPATH="$src/tests/reference" /usr/bin/python3 - "$ckpt" <<'PY'
import sys, h5py, torch, models
f = h5py.File(sys.argv[1], "r")
state = {k: torch.as_tensor(f["model"][k][()]) for k in f["model"]}
net = models.build("attn_cnn")
net.load_state_dict(state, strict=True)
model = f.attrs["model"]
model = model.decode() if isinstance(model, bytes) else str(model)
assert f.attrs["step"] == 0 and model == "attn_cnn", (f.attrs["step"], model)
n = sum(p.numel() for p in net.parameters())
assert n == 45236, n
# Init scheme of MODELS.md §1: Kaiming-normal conv weights (std sqrt(2/fan_in)),
# zero biases, unit LayerNorm weights.
w = net.cnn[5].weight
std = (2.0 / (32 * 9)) ** 0.5
assert abs(w.std().item() / std - 1) < 0.05, w.std().item()
assert float(net.cnn[5].bias.abs().max()) == 0.0 and float(net.norm1.weight.min()) == 1.0
print("ok: checkpoint loads into PyTorch with strict=True")
PY
