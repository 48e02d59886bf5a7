#!/bin/sh
# A short attn_cnn run on the synthetic dataset: it must learn (validation
# accuracy well above the 10 % of chance), write the metrics rows the README
# promises, and `ctrain eval` must reproduce the test row from the checkpoint.
# usage: train_synthetic.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/d.h5" --train 6000 --test 1000 --val 1000 --seed 3
"$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.epochs=3 --set train.batch_size=64 --set run.dir="$tmp/run" --set run.log_every=20 \
  > "$tmp/out.txt"
cat "$tmp/out.txt"
ckpt=$(sed -n 's/^checkpoint: //p' "$tmp/out.txt")
test -f "$ckpt"
"$ctrain" eval "$ckpt" --data "$tmp/d.h5" --split test --json "$tmp/eval.json"
/usr/bin/python3 - "$tmp/run/metrics.jsonl" "$tmp/eval.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if r["split"] == "train"]
val = [r for r in rows if r["split"] == "val"]
test = [r for r in rows if r["split"] == "test"]
assert len(val) == 3 and len(test) == 1, (len(val), len(test))
assert len(train) == 3 * (5000 // 64) // 20, len(train)
for r in train:
    assert {"epoch", "step", "loss", "acc", "lr", "images_per_s"} <= r.keys(), r
# Chance is 10 %; three short epochs of this learnable data reach far more.
assert val[-1]["acc"] > 0.4, f"validation accuracy {val[-1]['acc']:.3f} <= 0.4"
assert val[-1]["loss"] < val[0]["loss"] or val[0]["acc"] > 0.9, "validation loss did not fall"
ev = json.load(open(sys.argv[2]))
# eval recomputes the trainer's test row from the final checkpoint: same
# graph, same batches, same float32 sums in the same order.
assert ev["images"] == 1000, ev["images"]
assert abs(ev["acc"] - test[0]["acc"]) < 1e-9, (ev["acc"], test[0]["acc"])
assert abs(ev["loss"] - test[0]["loss"]) <= 1e-6 * abs(test[0]["loss"]), (ev["loss"], test[0]["loss"])
assert sum(map(sum, ev["confusion"])) == 1000
print(f"ok: val acc {val[-1]['acc']:.3f}, test acc {ev['acc']:.3f}")
PY
