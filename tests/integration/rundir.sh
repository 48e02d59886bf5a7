#!/bin/sh
# A run directory holding another run's checkpoints (another width or
# model) is refused with exit 2, naming the parameter and both shapes, and
# its checkpoints keep their bytes.
# usage: rundir.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$ctrain" prepare synthetic "$tmp/d.h5" --train 96 --test 24 --seed 3 >/dev/null
train() {
  "$ctrain" train "$src/configs/vit.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
    --set train.batch_size=24 --set run.threads=1 --set run.dir="$tmp/run" --set model.depth=1 "$@"
}
train --set model.dim=32 --set train.max_steps=4 --set run.checkpoint_every=2 --set run.keep=5 >/dev/null 2>&1 ||
  fail "first run failed"
(cd "$tmp/run/checkpoints" && sha256sum step_*.h5) >"$tmp/before"
[ "$(wc -l <"$tmp/before")" -ge 2 ] || fail "first run wrote fewer than 2 checkpoints"
for set in model.dim=48 model.name=attn_cnn; do
  rc=0
  train --set train.max_steps=8 --set run.resume=auto --set "$set" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" = 2 ] || fail "$set: exit $rc, not 2: $(cat "$tmp/err")"
  grep -Eq "step_00000004.h5(: '/model/.*' is \(.*\) in the checkpoint, \(.*\) in the model| holds a 'vit' model)" "$tmp/err" ||
    fail "$set: message lacks the parameter and shapes: $(cat "$tmp/err")"
  grep -q "run.resume = none or a new run.dir" "$tmp/err" || fail "$set: no way out named"
  (cd "$tmp/run/checkpoints" && sha256sum step_*.h5) | cmp -s - "$tmp/before" ||
    fail "$set: checkpoints changed"
done
echo "ok: incompatible run.dir refused, checkpoints untouched"

# one run per run.dir: a second run refuses at once naming pid and host;
# the first finishes; after kill -9 of a holder a new run starts
lock() {
  ${exec_lock:+exec} "$ctrain" train "$src/configs/vit.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
    --set train.batch_size=24 --set run.threads=1 --set run.dir="$tmp/lk" --set model.depth=1 \
    --set model.dim=32 --set run.resume=auto "$@"
}
# in the background through exec, so $! is ctrain's own pid; epochs and steps
# large enough that it still holds the lock when the second one starts
(exec_lock=1 lock --set train.epochs=1000 --set train.max_steps=1000000 >"$tmp/first.out" 2>&1) &
first=$!
i=0
until grep -q "ctrain .*: model" "$tmp/first.out" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 600 ] || fail "first run never started"; sleep 0.1
done
rc=0
lock --set train.max_steps=4 >"$tmp/second.out" 2>"$tmp/second.err" || rc=$?
[ "$rc" = 2 ] || fail "second run on a held run.dir: exit $rc, not 2: $(cat "$tmp/second.err")"
grep -q "lk/.lock: another run holds this run.dir (pid $first on host $(hostname))" "$tmp/second.err" ||
  fail "refusal lacks the lock file, pid or host: $(cat "$tmp/second.err")"
kill -TERM $first # checkpoints and exits 0
wait $first || fail "first run failed: $(cat "$tmp/first.out")"
(exec_lock=1 lock --set train.epochs=1000 --set train.max_steps=1000000 >"$tmp/third.out" 2>&1) &
third=$!
i=0
until grep -q "ctrain .*: model" "$tmp/third.out" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 600 ] || fail "third run never started"; sleep 0.1
done
kill -9 $third
wait $third || true
lock --set train.max_steps=4 >/dev/null 2>"$tmp/fourth.err" || fail "run after kill -9: $(cat "$tmp/fourth.err")"
echo "ok: run.dir lock refuses a second run and dies with its holder"
