#!/bin/sh
# The checkpoints/ directory never loses work:
# - run.resume = none into a directory holding checkpoints moves them (bytes
#   unchanged, with `latest`) to checkpoints/previous_N/, which rotation and
#   resume=auto never touch; resuming names the settings changed since the
#   checkpoint was saved;
# - resuming with another train.seed is refused (exit 2, naming train.seed),
#   since /rng/state says the checkpoint's data order was another one;
# - a `latest` that cannot be written fails with one line naming it, exit 1,
#   no latest.tmp left, the checkpoint itself intact; on 2 ranks too, with
#   no MPI_ABORT (every rank learns rank 0's outcome and ends cleanly).
# usage: ckpt_dir.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$src/tests/integration/mpi_env.sh"
"$ctrain" prepare synthetic "$tmp/d.h5" --train 96 --test 24 --seed 3 >/dev/null
args() {
  echo "$src/configs/vit.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
    --set train.batch_size=24 --set run.threads=1 --set model.depth=1 --set model.dim=32
}
# shellcheck disable=SC2046 # args are single words
train() { "$ctrain" train $(args) "$@"; }
sums() { (cd "$1" && sha256sum step_*.h5 latest); }

ck="$tmp/run/checkpoints"
train --set run.dir="$tmp/run" --set train.max_steps=8 --set run.checkpoint_every=4 \
  --set run.keep=5 >/dev/null 2>&1 || fail "first run failed"
sums "$ck" >"$tmp/first"
train --set run.dir="$tmp/run" --set train.max_steps=4 --set run.keep=1 --set run.resume=none \
  >"$tmp/none.out" 2>&1 || fail "resume=none failed: $(cat "$tmp/none.out")"
grep -q "run.resume = none: the 2 checkpoint(s) already in .*moved to .*/previous_1" \
  "$tmp/none.out" || fail "no line saying where the checkpoints went: $(cat "$tmp/none.out")"
sums "$ck/previous_1" | cmp -s - "$tmp/first" || fail "set-aside checkpoints changed"
[ "$(ls "$ck" | grep -c '^step_')" = 1 ] && [ -f "$ck/step_00000004.h5" ] ||
  fail "the new run's checkpoint is missing: $(ls "$ck")"
train --set run.dir="$tmp/run" --set train.max_steps=4 --set run.resume=none >/dev/null 2>&1 ||
  fail "second resume=none failed"
[ -f "$ck/previous_2/step_00000004.h5" ] || fail "second set-aside not in previous_2"
sums "$ck/previous_1" | cmp -s - "$tmp/first" || fail "previous_1 changed by a later run"
train --set run.dir="$tmp/run" --set train.max_steps=6 --set run.resume=auto >"$tmp/auto.out" 2>&1 ||
  fail "resume=auto after set-aside: $(cat "$tmp/auto.out")"
grep -q "resumed from $ck/step_00000004.h5 at step 4" "$tmp/auto.out" ||
  fail "resume=auto did not take the top-level checkpoint: $(cat "$tmp/auto.out")"
changed=$(grep "resuming with 2 settings changed since the checkpoint: " "$tmp/auto.out") ||
  fail "resume=auto did not name the changed settings: $(cat "$tmp/auto.out")"
case "$changed" in *run.resume*train.max_steps* | *train.max_steps*run.resume*) ;;
*) fail "changed settings: want run.resume and train.max_steps: $changed" ;; esac
echo "ok: run.resume = none set earlier checkpoints aside, intact"

sums "$ck" >"$tmp/before"
for ranks in 1 2; do
  rc=0
  # shellcheck disable=SC2046
  mpi $ranks "$ctrain" train $(args) --set run.dir="$tmp/run" --set train.max_steps=10 \
    --set run.resume=auto --set train.seed=12345 >"$tmp/seed.out" 2>"$tmp/seed.err" || rc=$?
  [ "$rc" = 2 ] || fail "$ranks ranks, another seed: exit $rc, not 2: $(cat "$tmp/seed.err")"
  grep -q "step_00000006.h5 was trained with another data order (train.seed differs" \
    "$tmp/seed.err" || fail "$ranks ranks: message lacks the file or train.seed: $(cat "$tmp/seed.err")"
  [ "$(grep -c '^ctrain' "$tmp/seed.err")" = 1 ] || fail "$ranks ranks: want one line: $(cat "$tmp/seed.err")"
  sums "$ck" | cmp -s - "$tmp/before" || fail "$ranks ranks: checkpoints changed by a refused resume"
done
echo "ok: a resume with another train.seed is refused; checkpoints untouched"

for ranks in 1 2; do
  d="$tmp/lt$ranks"
  mkdir -p "$d/checkpoints/latest/x"
  rc=0
  # shellcheck disable=SC2046
  mpi $ranks "$ctrain" train $(args) --set run.dir="$d" --set train.max_steps=2 \
    >"$tmp/lt.out" 2>"$tmp/lt.err" || rc=$?
  [ "$rc" = 1 ] || fail "$ranks ranks, unwritable latest: exit $rc, not 1: $(cat "$tmp/lt.err")"
  [ "$(grep -c '^ctrain' "$tmp/lt.err")" = 1 ] || fail "$ranks ranks: want one line: $(cat "$tmp/lt.err")"
  grep -q "checkpoints/latest: cannot write: " "$tmp/lt.err" || fail "$ranks ranks: message: $(cat "$tmp/lt.err")"
  ! grep -q MPI_ABORT "$tmp/lt.err" || fail "$ranks ranks: aborted instead of ending cleanly"
  [ ! -e "$d/checkpoints/latest.tmp" ] || fail "$ranks ranks: latest.tmp left behind"
  "$ctrain" inspect "$d/checkpoints/step_00000002.h5" >/dev/null || fail "$ranks ranks: checkpoint damaged"
done
echo "ok: an unwritable latest fails in one line, checkpoint intact, on 1 and 2 ranks"
