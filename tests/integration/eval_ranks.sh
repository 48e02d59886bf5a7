#!/bin/sh
# `ctrain eval` on 2 and 3 ranks reports what 1 rank reports. Rank r reads
# rows r, r + N, ... of the split and the ranks sum their loss, correct,
# image and confusion counts; a reduction that forgets part of them (say the
# confusion matrix, leaving rank 0 with its own shard's) shows up here. The
# test split has 101 rows, which neither 2 nor 3 divides: the shards are
# 51/50 and 34/34/33, so the last rank's is the short one, and with batch 16
# every rank ends on a partial batch (padded rows must not count). The val
# split has 2 rows, fewer than 3 ranks: rank 2 has none and adds nothing.
# What must match, and how closely:
# - images, the confusion matrix, per-class accuracy and accuracy exactly:
#   they are counts (and ratios of the same counts), summed in doubles
#   exactly whatever order MPI adds the ranks in. Each row's prediction is
#   its own logits' argmax in eval mode (BatchNorm on running statistics):
#   which rows share a batch could move a logit by rounding only, and flip
#   a prediction only at a near-tie of two classes, which this data lacks.
# - loss to 1e-6 relative: it is the sum over batches of (float32 batch mean)
#   * rows, and the batches themselves differ between world sizes. Each
#   batch mean is rounded to float32 once (relative error <= 2^-24 = 6e-8),
#   so two world sizes can differ by about 2 * 2^-24 = 1.2e-7, plus ulps in
#   the logits if the GEMMs round differently for another batch make-up, and
#   the JSON's 9 digits. Measured: up to 5.2e-8.
# The model is trained 100 steps so that its predictions spread over the
# classes (a near-constant predictor would leave the confusion matrix one
# column, a weaker check).
# usage: eval_ranks.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/d.h5" --train 402 --test 101 --val 2 --seed 7 >/dev/null
"$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.batch_size=16 --set train.max_steps=100 --set run.threads=1 \
  --set run.dir="$tmp/run" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
ckpt=$(sed -n 's/^checkpoint: //p' "$tmp/train.log")
test -f "$ckpt"
for run in test1 test2 test3 val1 val3; do
  split=${run%?} n=${run#"$split"}
  mpi "$n" "$ctrain" eval "$ckpt" --data "$tmp/d.h5" --split "$split" --json "$tmp/$run.json" \
    >"$tmp/$run.log" 2>&1 || { cat "$tmp/$run.log"; exit 1; }
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
worst = 0.0
for split, images, ranks in (("test", 101, (2, 3)), ("val", 2, (3,))):
    ref = json.load(open(f"{d}/{split}1.json"))
    k = len(ref["classes"])
    conf = ref["confusion"]
    assert ref["split"] == split and ref["images"] == images, (split, ref["images"])
    assert len(conf) == k and all(len(row) == k for row in conf), conf
    assert sum(map(sum, conf)) == images, conf
    # The 1-rank result is self-consistent, so it is a fair reference.
    correct = sum(conf[i][i] for i in range(k))
    assert ref["acc"] == float(f"{correct / images:.9g}"), (ref["acc"], correct)
    if split == "test":
        predicted = sum(1 for j in range(k) if any(conf[i][j] for i in range(k)))
        assert predicted >= 3, f"the model predicts only {predicted} classes: a weak check"
    for n in ranks:
        got = json.load(open(f"{d}/{split}{n}.json"))
        for key in ("images", "confusion", "per_class_acc", "acc", "classes", "split"):
            assert got[key] == ref[key], f"{split}, {n} ranks: {key} {got[key]} != 1 rank's {ref[key]}"
        rel = abs(got["loss"] - ref["loss"]) / abs(ref["loss"])
        worst = max(worst, rel)
        assert rel <= 1e-6, f"{split}, {n} ranks: loss {got['loss']} vs 1 rank's {ref['loss']} ({rel:.1e})"
print(f"ok: test (101 images, {predicted} classes predicted) on 2 and 3 ranks and val (2 images) "
      f"on 3 ranks match 1 rank; loss within {worst:.1e} (bound 1e-6)")
PY
