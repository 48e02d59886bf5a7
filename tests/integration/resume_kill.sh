#!/bin/sh
# Exact resume: 2 ranks with shuffle and every augmentation on, killed with
# SIGKILL (all ranks at once) at three random moments and resumed with
# run.resume=auto each time, end with parameters, buffers and optimizer state
# bitwise identical to an uninterrupted run: batches are a pure function of
# (seed, epoch, batch), dropout of (seed, step), and a checkpoint is complete
# and atomic. Then resuming a 2-rank checkpoint on 1 rank works and ends
# within rounding of the 2-rank run (same global batches; bound 1e-4
# relative, SGD so rounding stays rounding-sized, see world_size.sh).
# usage: resume_kill.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/d.h5" --train 480 --test 48 --seed 7 >/dev/null
train() {
  n=$1 dir=$2
  shift 2
  $launch "$n" "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" \
    --set data.val_size=48 --set data.augment=crop,flip,rotate,cutout --set train.epochs=3 \
    --set train.batch_size=24 --set run.threads=1 --set run.checkpoint_every=3 \
    --set run.log_every=5 --set run.dir="$tmp/$dir" "$@"
}
launch=mpi
train 2 ref >"$tmp/ref.log" 2>&1 || { cat "$tmp/ref.log"; exit 1; }
for i in 1 2 3; do
  launch=mpi_exec
  train 2 killed --set run.resume=auto >"$tmp/killed$i.log" 2>&1 &
  pid=$!
  # 0.5 .. 3.0 s: from start-up to well into the run (it takes ~4 s)
  sleep "$(awk -v s="$$$i" 'BEGIN { srand(s); printf "%.2f", 0.5 + 2.5 * rand() }')"
  pkill -KILL -P "$pid" 2>/dev/null || true # mpirun's children: the ranks
  wait "$pid" || true
  launch=mpi
  echo "kill $i: $(grep -o 'resumed from .*' "$tmp/killed$i.log" || echo 'fresh start')"
done
train 2 killed --set run.resume=auto >"$tmp/final.log" 2>&1 || { cat "$tmp/final.log"; exit 1; }
# the other world size: stop a 2-rank run at step 30, go on with 1 rank
sgd="--set train.optimizer=sgd --set train.lr=0.01"
train 2 sgd $sgd >"$tmp/sgd.log" 2>&1 || { cat "$tmp/sgd.log"; exit 1; }
train 2 switch $sgd --set train.max_steps=30 >"$tmp/switch2.log" 2>&1 || { cat "$tmp/switch2.log"; exit 1; }
train 1 switch $sgd --set run.resume=auto >"$tmp/switch1.log" 2>&1 || { cat "$tmp/switch1.log"; exit 1; }
grep -q "resumed from .*step_00000030.h5 at step 30 (saved by 2 ranks" "$tmp/switch1.log" ||
  { echo "FAIL: the 1-rank run did not resume from step 30"; cat "$tmp/switch1.log"; exit 1; }
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def state(run):
    with h5py.File(f"{d}/{run}/checkpoints/step_00000054.h5", "r") as f:
        out = {}
        f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
        return out, f.attrs["step"]
ref, step = state("ref")
got, _ = state("killed")
assert step == 54 and ref.keys() == got.keys()
for k in ref:
    if k.startswith("rng/"):
        continue
    assert ref[k].tobytes() == got[k].tobytes(), f"{k} differs after kill and resume"
sw, _ = state("switch")
ref, _ = state("sgd")
num = sum(np.sum((sw[k].astype(np.float64) - ref[k]) ** 2) for k in ref if k.startswith("model/"))
den = sum(np.sum(ref[k].astype(np.float64) ** 2) for k in ref if k.startswith("model/"))
rel = (num / den) ** 0.5
assert rel < 1e-4, f"2 ranks then 1 rank differs from 2 ranks by {rel:.2e}"
print(f"ok: killed 3 times, resumed bitwise identical; 2 -> 1 ranks within {rel:.1e}")
PY
