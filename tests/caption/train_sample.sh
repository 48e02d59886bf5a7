#!/bin/sh
# `ctrain train` on synthetic COCO (configs/caption_transformer.ini, a
# narrow model) learns: the validation loss falls epoch after epoch and ends
# well below where it starts; every validation row of metrics.jsonl carries
# loss, token accuracy and BLEU-1..4, train rows captions_per_s; the progress
# lines look like the classifiers'. Then `ctrain sample` prints the expected
# format (a header, `image | sampled caption | ground truth` with every
# reference of each shown image, loss, the BLEU line) and its BLEU is the
# trainer's last validation BLEU.
# usage: train_sample.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic-coco "$tmp/src" --train 600 --val 100 --seed 5 >/dev/null
"$ctrain" prepare coco "$tmp/src" "$tmp/coco.h5" >/dev/null
"$ctrain" train "$src/configs/caption_transformer.ini" --set data.path="$tmp/coco.h5" \
  --set model.dim=64 --set model.ffn_dim=256 --set train.batch_size=50 --set train.epochs=4 \
  --set run.log_every=8 --set run.dir="$tmp/run" >"$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; exit 1; }
grep -Eq '^epoch 1/4 \[[=> ]{30}\] 8/24 ETA [0-9]{2}:[0-9]{2} loss [0-9.]+ acc +[0-9.]+% [0-9]+ cap/s$' \
  "$tmp/train.log" || { echo "FAIL: no progress line"; cat "$tmp/train.log"; exit 1; }
grep -Eq '^val: loss [0-9.]+ token acc [0-9.]+% BLEU-1 [0-9.]+ BLEU-2 [0-9.]+ BLEU-3 [0-9.]+ BLEU-4 [0-9.]+ \(200 captions, 100 images\)$' \
  "$tmp/train.log" || { echo "FAIL: no validation line"; cat "$tmp/train.log"; exit 1; }
"$ctrain" sample "$tmp/run/checkpoints/step_00000096.h5" --data "$tmp/coco.h5" --n 3 \
  >"$tmp/sample.txt" 2>"$tmp/sample.err" || { cat "$tmp/sample.err"; exit 1; }
cat "$tmp/sample.txt"
/usr/bin/python3 - "$tmp" <<'PY'
import json, re, sys, h5py
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"{d}/run/metrics.jsonl")]
val = [r for r in rows if r["split"] == "val"]
train = [r for r in rows if r["split"] == "train"]
assert [r["epoch"] for r in val] == [1, 2, 3, 4], val
for r in val:
    assert {"loss", "acc", "bleu1", "bleu2", "bleu3", "bleu4"} <= r.keys(), r
    assert all(0 <= r[f"bleu{n}"] <= 1 for n in range(1, 5)), r
assert all("captions_per_s" in r and "images_per_s" not in r for r in train), train[0]
losses = [r["loss"] for r in val]
assert all(b < a for a, b in zip(losses, losses[1:])), f"validation loss does not fall: {losses}"
assert losses[-1] < 0.75 * losses[0], f"validation loss falls too little: {losses}"
assert val[-1]["bleu1"] > val[0]["bleu1"], [r["bleu1"] for r in val]

lines = open(f"{d}/sample.txt").read().splitlines()
if lines[0].startswith("device: "):   # the backend ctrain chose
    lines = lines[1:]
assert re.fullmatch(r"caption_transformer \(step 96\) on /val of .*coco\.h5: 100 images, "
                    r"200 captions, greedy decoding", lines[0]), lines[0]
assert lines[1] == "" and re.fullmatch(r" image  sampled caption +\| ground truth", lines[2]), lines[2]
table = lines[3:3 + 6]   # 3 images, 2 references each
with h5py.File(f"{d}/coco.h5", "r") as f:
    vocab = [w.decode() if isinstance(w, bytes) else w for w in f["idx_to_word"][()]]
    idx, caps = f["val/image_idxs"][()], f["val/captions"][()]
words = set(vocab[4:])
for i in range(3):
    first, second = table[2 * i], table[2 * i + 1]
    m = re.fullmatch(r" +(\d+)  (.*?) +\| (.*)", first)
    assert m and int(m.group(1)) == i, first
    assert set(m.group(2).split()) <= words, first
    m2 = re.fullmatch(r" +\| (.*)", second)
    assert m2, second
    refs = sorted(" ".join(vocab[t] for t in c[1:] if t > 3) for c in caps[idx == i])
    assert sorted([m.group(3), m2.group(1)]) == refs, (first, second, refs)
assert lines[9] == "", lines[9]
assert re.fullmatch(r"val: loss [0-9.]+ token accuracy [0-9.]+%", lines[10]), lines[10]
m = re.fullmatch(r"BLEU-1 ([0-9.]+)  BLEU-2 ([0-9.]+)  BLEU-3 ([0-9.]+)  BLEU-4 ([0-9.]+)  "
                 r"\(corpus BLEU over 100 images\)", lines[11])
assert m, lines[11]
for n in range(4):
    assert abs(float(m.group(n + 1)) - val[-1][f"bleu{n + 1}"]) <= 5e-5, (lines[11], val[-1])
print(f"ok: val loss {' > '.join(f'{x:.3f}' for x in losses)}; BLEU-1..4 "
      f"{', '.join(m.group(n) for n in range(1, 5))}; sample format as expected")
PY
