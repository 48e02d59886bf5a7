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
