#!/bin/sh
# Checkpoint and run faults:
# - a corrupted checkpoint (bytes flipped inside a dataset: checksum) and a
#   truncated one (HDF5 cannot open it) are each reported in one line naming
#   the file; run.resume=auto falls back to the previous valid checkpoint and
#   says so; an explicit run.resume=PATH to a bad file fails (exit 1);
# - a flipped bit in the root attribute `step` is caught by the root
#   checksum (fallback); a stale *.h5.tmp is removed at start;
# - `ctrain inspect` lists a good checkpoint and names a bad one;
# - SIGTERM (2 ranks) and SIGUSR1 (1 rank): the step finishes, a checkpoint
#   is written, "checkpointed at step S" is logged and the exit code is 0;
# - a NaN loss stops the run naming the step, and no checkpoint holds a
#   non-finite value;
# - when one rank dies the others do not hang;
# - a global batch that does not divide over the ranks names both numbers.
# usage: ckpt_faults.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$ctrain" prepare synthetic "$tmp/d.h5" --train 480 --test 48 --seed 9 >/dev/null
train() {
  "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
    --set train.batch_size=24 --set run.threads=1 "$@"
}
ck="$tmp/run/checkpoints"

# corrupt and truncated checkpoints
train --set train.max_steps=12 --set run.checkpoint_every=4 --set run.keep=5 \
  --set run.dir="$tmp/run" >/dev/null
/usr/bin/python3 - "$ck/step_00000012.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    off = f["model/cnn.5.weight"].id.get_offset()
with open(path, "r+b") as f:
    f.seek(off + 100)
    b = f.read(8)
    f.seek(off + 100)
    f.write(bytes(x ^ 0xFF for x in b))
PY
head -c 2000 "$ck/step_00000008.h5" >"$tmp/t" && mv "$tmp/t" "$ck/step_00000008.h5"
train --set train.max_steps=16 --set run.dir="$tmp/run" --set run.resume=auto \
  >"$tmp/auto.out" 2>"$tmp/auto.err" || fail "resume=auto over bad checkpoints: $(cat "$tmp/auto.err")"
cat "$tmp/auto.err"
[ "$(wc -l <"$tmp/auto.err")" -eq 2 ] || fail "want one line per bad checkpoint"
grep -q "step_00000012.h5: checksum mismatch in '/model/cnn.5.weight'.*falling back" "$tmp/auto.err" ||
  fail "corrupt checkpoint not reported"
grep -q "step_00000008.h5: not a readable HDF5 file.*falling back" "$tmp/auto.err" ||
  fail "truncated checkpoint not reported"
grep -q "resumed from .*step_00000004.h5 at step 4" "$tmp/auto.out" || fail "did not resume from step 4"
test -f "$ck/step_00000016.h5" || fail "no checkpoint at step 16"
if train --set run.dir="$tmp/run2" --set run.resume="$ck/step_00000012.h5" 2>"$tmp/path.err" >/dev/null; then
  fail "resume from a corrupt PATH succeeded"
fi
[ "$(wc -l <"$tmp/path.err")" -eq 1 ] && grep -q "step_00000012.h5: checksum mismatch" "$tmp/path.err" ||
  fail "explicit bad PATH: $(cat "$tmp/path.err")"
"$ctrain" inspect "$ck/step_00000016.h5" >"$tmp/inspect.txt"
grep -q "/model/cnn.0.weight .*float32 (3,3,5,5)  checksum ok" "$tmp/inspect.txt" || fail "inspect listing"
grep -q "/optim/exp_avg_sq/classifier.weight" "$tmp/inspect.txt" || fail "inspect: optimizer state"
grep -q "@world_size = 1" "$tmp/inspect.txt" || fail "inspect: attributes"
grep -q "^verified: metadata and every dataset" "$tmp/inspect.txt" || fail "inspect: no verdict"
if "$ctrain" inspect "$ck/step_00000012.h5" >/dev/null 2>"$tmp/insp.err"; then fail "inspect of a corrupt file succeeded"; fi
grep -q "step_00000012.h5" "$tmp/insp.err" || fail "inspect error does not name the file"
echo "ok: bad checkpoints reported, skipped, refused and inspected"

# a flipped bit in the root attribute `step` (root checksum) and a stale
# *.h5.tmp from a killed write: resume=auto falls back and says why; the
# temporary file is removed at start
train --set train.max_steps=8 --set run.checkpoint_every=4 --set run.dir="$tmp/flip" >/dev/null
touch "$tmp/flip/checkpoints/step_00000099.h5.tmp"
/usr/bin/python3 - "$tmp/flip/checkpoints/step_00000008.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs.modify("step", f.attrs["step"] ^ (1 << 40))
PY
train --set train.max_steps=10 --set run.dir="$tmp/flip" --set run.resume=auto \
  >"$tmp/flip.out" 2>"$tmp/flip.err" || fail "resume=auto over a flipped step: $(cat "$tmp/flip.err")"
grep -q "step_00000008.h5: checksum mismatch in the root attributes.*falling back" "$tmp/flip.err" ||
  fail "flipped step not reported: $(cat "$tmp/flip.err")"
grep -q "resumed from .*step_00000004.h5 at step 4" "$tmp/flip.out" || fail "did not resume from step 4"
test ! -e "$tmp/flip/checkpoints/step_00000099.h5.tmp" || fail "stale .h5.tmp not removed"
if "$ctrain" inspect "$tmp/flip/checkpoints/step_00000008.h5" >/dev/null 2>"$tmp/insp.err"; then
  fail "inspect of a flipped root attribute succeeded"
fi
grep -q "step_00000008.h5: checksum mismatch in the root attributes" "$tmp/insp.err" ||
  fail "inspect: flipped step not named: $(cat "$tmp/insp.err")"
echo "ok: flipped step bit detected (resume falls back to step 4, inspect refuses); stale .tmp removed"

# SIGTERM on 2 ranks, SIGUSR1 on 1 rank: checkpoint, exit 0
mpi_exec 2 "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.batch_size=24 --set run.threads=1 --set train.epochs=50 --set run.dir="$tmp/term" \
  >"$tmp/term.out" 2>&1 &
pid=$!
sleep 3
pkill -TERM -P "$pid"
wait "$pid" || fail "SIGTERM: exit code $? (want 0): $(cat "$tmp/term.out")"
step=$(sed -n 's/^checkpointed at step \([0-9]*\).*/\1/p' "$tmp/term.out")
[ -n "$step" ] && test -f "$(printf '%s/term/checkpoints/step_%08d.h5' "$tmp" "$step")" ||
  fail "SIGTERM: no 'checkpointed at step S' or no checkpoint: $(tail -3 "$tmp/term.out")"
"$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.batch_size=24 --set run.threads=1 --set train.epochs=50 --set run.dir="$tmp/usr1" \
  >"$tmp/usr1.out" 2>&1 &
pid=$!
sleep 2
kill -USR1 "$pid"
wait "$pid" || fail "SIGUSR1: exit code $?"
grep -q "^checkpointed at step" "$tmp/usr1.out" || fail "SIGUSR1: $(tail -3 "$tmp/usr1.out")"
echo "ok: SIGTERM checkpointed at step $step and exited 0; SIGUSR1 too"

# NaN: a huge learning rate; checkpoints written before it stay finite
if train --set train.lr=1e30 --set train.max_steps=30 --set run.checkpoint_every=1 \
  --set run.dir="$tmp/nan" >/dev/null 2>"$tmp/nan.err"; then
  fail "a NaN run succeeded"
fi
grep -q "non-finite .* at step [0-9]*" "$tmp/nan.err" || fail "NaN message: $(cat "$tmp/nan.err")"
nan_step=$(sed -n 's/.*non-finite [a-z]* at step \([0-9]*\).*/\1/p' "$tmp/nan.err")
test ! -e "$(printf '%s/nan/checkpoints/step_%08d.h5' "$tmp" $((nan_step + 1)))" || fail "checkpoint after NaN"
/usr/bin/python3 - "$tmp/nan/checkpoints" <<'PY'
import sys, glob, h5py, numpy as np
for p in glob.glob(sys.argv[1] + "/step_*.h5"):
    with h5py.File(p, "r") as f:
        for k in f["model"]:
            assert np.all(np.isfinite(f["model"][k][()])), (p, k)
PY
echo "ok: $(cat "$tmp/nan.err")"

# one rank dies: the job ends (with an error), nobody hangs
mpi_exec 2 "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.batch_size=24 --set run.threads=1 --set train.epochs=50 --set run.dir="$tmp/die" \
  >"$tmp/die.out" 2>&1 &
pid=$!
sleep 3
kill -KILL "$(pgrep -P "$pid" | head -1)"
i=0
while kill -0 "$pid" 2>/dev/null; do
  i=$((i + 1))
  [ $i -lt 60 ] || { pkill -KILL -P "$pid"; fail "the surviving rank hung for 30 s"; }
  sleep 0.5
done
if wait "$pid"; then fail "a job with a killed rank exited 0"; fi
echo "ok: one rank killed, the job ended after ~$((i / 2)) s with an error"

# the global batch must divide over the ranks
if mpi 3 "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" \
  --set train.batch_size=32 --set run.dir="$tmp/div" >/dev/null 2>"$tmp/div.err"; then
  fail "batch 32 on 3 ranks succeeded"
fi
grep -q "train.batch_size = 32 does not divide over 3 ranks" "$tmp/div.err" || fail "$(cat "$tmp/div.err")"
echo "ok: batch 32 over 3 ranks refused"
