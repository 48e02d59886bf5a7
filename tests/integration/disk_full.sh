#!/bin/sh
# A full run directory (a 3 MiB tmpfs): the checkpoint that does not fit
# fails with one line naming the file and "no space left on device", exit 1
# (no crash), no *.tmp is left, the earlier checkpoints verify, and after
# space is freed run.resume=auto continues from the last good one. On 2
# ranks too: every rank learns rank 0's outcome, so the job ends with that
# one line and no MPI_ABORT.
# Skips (77) when tmpfs cannot be mounted (not root, no CAP_SYS_ADMIN).
# usage: disk_full.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
mkdir "$tmp/m"
if ! mount -t tmpfs -o size=3m tmpfs "$tmp/m" 2>"$tmp/mount.err"; then
  echo "SKIP: cannot mount a tmpfs: $(cat "$tmp/mount.err")"
  rm -rf "$tmp"
  exit 77
fi
trap 'umount "$tmp/m" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$src/tests/integration/mpi_env.sh"
"$ctrain" prepare synthetic "$tmp/d.h5" --train 240 --test 24 --seed 9 >/dev/null
# 1 rank as a user starts it (no mpirun), 2 ranks under mpirun
train() {
  set -- "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" \
    --set data.val_size=0 --set train.batch_size=24 --set run.threads=1 \
    --set run.dir="$tmp/m/run$ranks" --set run.checkpoint_every=4 --set run.keep=100 "$@"
  if [ "$ranks" = 1 ]; then "$@"; else mpi "$ranks" "$@"; fi
}
for ranks in 1 2; do
  ck="$tmp/m/run$ranks/checkpoints"
  rc=0
  train --set train.max_steps=200 >/dev/null 2>"$tmp/full.err" || rc=$?
  cat "$tmp/full.err"
  [ "$rc" -eq 1 ] || fail "full disk: exit $rc (want 1)"
  [ "$(grep -c '^ctrain' "$tmp/full.err")" -eq 1 ] || fail "want one line"
  ! grep -q MPI_ABORT "$tmp/full.err" || fail "$ranks ranks: aborted instead of ending cleanly"
  grep -q "step_[0-9]*\.h5: no space left on device" "$tmp/full.err" || fail "message"
  [ -z "$(find "$ck" -name '*.tmp')" ] || fail "temporary file left: $(ls "$ck")"
  last=$(ls "$ck" | grep '^step_' | tail -1)
  [ -n "$last" ] || fail "no earlier checkpoint"
  for f in "$ck"/step_*.h5; do "$ctrain" inspect "$f" >/dev/null || fail "$f does not verify"; done
  for f in "$ck"/step_*.h5; do [ "$f" = "$ck/$last" ] || rm "$f"; done
  step=$(echo "$last" | sed 's/step_0*\([0-9]*\)\.h5/\1/')
  train --set train.max_steps=$((step + 2)) --set run.resume=auto >"$tmp/resume.out" 2>&1 ||
    fail "resume after freeing space: $(cat "$tmp/resume.out")"
  grep -q "resumed from .*$last at step $step" "$tmp/resume.out" || fail "did not resume from $last"
  echo "ok: $ranks rank(s): full disk failed cleanly at the checkpoint after $last; resumed from it"
  rm -rf "$tmp/m/run$ranks"
done
