#!/bin/sh
# The seed-004 overfit check: the ViT of configs/vit.ini with dropout 0,
# trained by Adam (weight decay 1e-4) for 100 steps on ONE batch of 64 images
# (the whole training split, unshuffled, unaugmented, scaled to [0, 1] like
# the seed's ToTensor), must classify that batch perfectly. The accuracy is
# the training row of step 100: the forward of the last step, before its
# update, as the seed's `top1`.
# The batch is real CIFAR-10 (the JPEG copy in ../shared/data; skipped when it
# is absent): 6 or 7 training images of every class. Synthetic shapes do not
# serve: PyTorch's own ViT (tests/reference/models.py) reaches 34 % on them.
# Learning rate 1e-3, not MODELS.md's 1e-4: the seed's cell says "Tune learning
# rate and weight decay accordingly", and at 1e-4 the PyTorch reference on
# this batch reaches only 36 % after 100 steps (ctrain 42 %); at 1e-3 PyTorch
# reaches 100 % from step 80 (5e-4: 97 % at step 100).
# usage: vit_overfit.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
archive=$src/../shared/data/cifar10-jpeg.tar.gz
if [ ! -f "$archive" ]; then
  echo "SKIP: $archive not found (the real CIFAR-10 images this check needs)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
members=""
for class in airplane automobile bird cat deer dog frog horse ship truck; do
  members="$members test/$class/0000.jpg"
  for i in 0 1 2 3 4 5; do members="$members train/$class/000$i.jpg"; done
done
for class in airplane automobile bird cat; do members="$members train/$class/0006.jpg"; done
# shellcheck disable=SC2086 # one archive member per word
tar -xzf "$archive" -C "$tmp" $members
mkdir "$tmp/img" && mv "$tmp/train" "$tmp/test" "$tmp/img/"
"$ctrain" prepare images "$tmp/img" "$tmp/d.h5" --val 0 --seed 5
"$ctrain" train "$src/configs/vit.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set data.shuffle=false --set data.augment=none --set data.normalize=false \
  --set model.dropout=0 --set train.batch_size=64 --set train.lr=1e-3 \
  --set train.weight_decay=1e-4 --set train.schedule=constant --set train.max_steps=100 \
  --set train.epochs=100 --set run.eval_every_epoch=false --set run.log_every=1 \
  --set run.dir="$tmp/run" > "$tmp/out.txt"
/usr/bin/python3 - "$tmp/run/metrics.jsonl" <<'PY'
import json, sys
train = [r for r in map(json.loads, open(sys.argv[1])) if r["split"] == "train"]
last = train[-1]
print("\n".join(f"step {r['step']:3d} loss {r['loss']:.4f} acc {r['acc']:.3f}" for r in train[9::10]))
assert last["step"] == 100, last
assert last["acc"] == 1.0, f"ViT did not overfit one batch: accuracy {last['acc']:.3f} at step 100"
print(f"ok: one batch of 64 memorised, loss {last['loss']:.4f}")
PY
