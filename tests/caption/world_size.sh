#!/bin/sh
# World-size invariance of captioning: with shuffle off and dropout 0, 2 and
# 3 ranks end 20 steps with the parameters of 1 rank within 1e-5 relative
# (L2 norm of the difference over the norm of all parameters). Rank r holds
# caption rows r, r+N, ... and takes positions b*B/N .. of its shard in
# global batch b, so without shuffle the N ranks together see file rows
# b*B .. (b+1)*B-1, the batch 1 rank sees; each rank's loss is its masked sum
# over (B/N)*T, and the mean of the ranks' gradients is the gradient of the
# global sum over B*T. Dropout is off because its masks are drawn per rank
# (keyed by the local row). SGD as in tests/integration/world_size.sh: Adam
# turns rounding-level gradients (the self-attention key biases, which
# softmax cancels) into lr-sized steps. A 2-rank run WITH shuffle must differ
# (each rank shuffles its own shard), so the comparison can fail. Then
# `ctrain sample` of the 1-rank checkpoint on 1 and 3 ranks prints the same
# BLEU (exact integer sums) and loss (to the printed digits).
# usage: world_size.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic-coco "$tmp/src" --train 150 --val 40 --seed 3 >/dev/null
"$ctrain" prepare coco "$tmp/src" "$tmp/coco.h5" >/dev/null
run() {
  dir=$1 n=$2
  shift 2
  mpi "$n" "$ctrain" train "$src/configs/caption_transformer.ini" --set data.path="$tmp/coco.h5" \
    --set model.dim=64 --set model.ffn_dim=256 --set model.dropout=0 --set data.shuffle=false \
    --set train.batch_size=12 --set train.max_steps=20 --set train.optimizer=sgd \
    --set train.lr=0.1 --set run.threads=1 --set run.dir="$tmp/$dir" "$@" >"$tmp/$dir.log" 2>&1 ||
    { cat "$tmp/$dir.log"; exit 1; }
}
run r1 1
run r2 2
run r3 3
run shuffled2 2 --set data.shuffle=true
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def load(run, world):
    with h5py.File(f"{d}/{run}/checkpoints/step_00000020.h5", "r") as f:
        assert f.attrs["step"] == 20 and f.attrs["world_size"] == world, dict(f.attrs)
        return {k: f["model"][k][()].astype(np.float64) for k in f["model"]}
ref = load("r1", 1)
def rel(got):
    num = sum(np.sum((got[k] - ref[k]) ** 2) for k in ref)
    return (num / sum(np.sum(ref[k] ** 2) for k in ref)) ** 0.5
worst = 0
for run, world in (("r2", 2), ("r3", 3)):
    r = rel(load(run, world))
    worst = max(worst, r)
    assert r <= 1e-5, f"{run}: parameters differ from 1 rank by {r:.2e} (relative L2)"
sens = rel(load("shuffled2", 2))
assert sens > 100 * max(worst, 1e-7), f"a shuffled run differs only by {sens:.1e}"
print(f"ok: 2 and 3 ranks match 1 rank within {worst:.1e} (bound 1e-5); a shuffled run differs by {sens:.1e}")
PY
ckpt="$tmp/r1/checkpoints/step_00000020.h5"
"$ctrain" sample "$ckpt" --data "$tmp/coco.h5" --n 0 | grep -E '^(val|BLEU)' >"$tmp/s1.txt"
mpi 3 "$ctrain" sample "$ckpt" --data "$tmp/coco.h5" --n 0 | grep -E '^(val|BLEU)' >"$tmp/s3.txt"
cmp "$tmp/s1.txt" "$tmp/s3.txt" || { echo "FAIL: sample on 3 ranks differs:"; cat "$tmp/s1.txt" "$tmp/s3.txt"; exit 1; }
echo "ok: sample on 1 and 3 ranks: $(tail -1 "$tmp/s1.txt")"
