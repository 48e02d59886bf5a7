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
# Each kill waits for a checkpoint newer than the one the run resumed from
# (the `latest` pointer), so every later start really resumes: a kill before
# the first checkpoint, or after the run ended, would make three fresh starts
# or no kill at all pass. Kill 1 lands right after a mid-epoch checkpoint
# (18 steps per epoch: 432 training images / 24); kills 2 and 3 add a random
# 0 .. 0.3 s so they land between checkpoints too.
steps=18 last=0
ckpt_step() { sed -n 's/^step_0*\([0-9][0-9]*\)\.h5$/\1/p' "$tmp/killed/checkpoints/latest" 2>/dev/null || true; }
resumed_step() { sed -n 's/.*resumed from .* at step \([0-9][0-9]*\) .*/\1/p' "$1" | head -n 1; }
for i in 1 2 3; do
  launch=mpi_exec
  train 2 killed --set run.resume=auto >"$tmp/killed$i.log" 2>&1 &
  pid=$!
  tries=0
  while :; do
    now=$(ckpt_step)
    if [ -n "$now" ] && [ "$now" -gt "$last" ] && { [ "$i" -ne 1 ] || [ $((now % steps)) -ne 0 ]; }; then
      break
    fi
    tries=$((tries + 1))
    [ "$tries" -lt 1200 ] || { echo "FAIL: kill $i: no new checkpoint in 60 s"; cat "$tmp/killed$i.log"; exit 1; }
    sleep 0.05
  done
  [ "$i" -eq 1 ] || sleep "$(awk -v s="$$$i" 'BEGIN { srand(s); printf "%.2f", 0.3 * rand() }')"
  pkill -KILL -P "$pid" 2>/dev/null || true # mpirun's children: the ranks
  wait "$pid" || true
  launch=mpi
  if grep -q 'checkpoint written in' "$tmp/killed$i.log"; then
    echo "FAIL: kill $i landed after the run had finished"; cat "$tmp/killed$i.log"; exit 1
  fi
  last=$(ckpt_step)
  echo "kill $i: after step $last: $(grep -o 'resumed from .*' "$tmp/killed$i.log" || echo 'fresh start')"
done
train 2 killed --set run.resume=auto >"$tmp/final.log" 2>&1 || { cat "$tmp/final.log"; exit 1; }
# every start after a kill resumed from a checkpoint with step > 0, later
# than the previous start's, and at least one of them mid-epoch
prev=0 mid=0
for log in killed2 killed3 final; do
  n=$(resumed_step "$tmp/$log.log")
  if [ -z "$n" ] || [ "$n" -le "$prev" ]; then
    echo "FAIL: $log did not resume from a step after $prev: '$n'"; cat "$tmp/$log.log"; exit 1
  fi
  [ $((n % steps)) -eq 0 ] || mid=1
  prev=$n
done
[ "$mid" -eq 1 ] || { echo "FAIL: no kill landed mid-epoch (a resume step not a multiple of $steps)"; exit 1; }
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
