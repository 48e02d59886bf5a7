#!/bin/sh
# A real single-node Slurm cluster (started here, stopped at the end): the
# sbatch script with 2 tasks (srun --mpi=pmix) completes a short training;
# the same job submitted again and requeued mid-run (scontrol requeue ->
# SIGTERM -> checkpoint -> requeued -> run.resume=auto) ends with parameters
# bitwise identical to the uninterrupted job. Exit 77 (skipped) only when
# Slurm cannot be installed.
# usage: slurm_requeue.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$(realpath "$1") src=$(realpath "$2")
. "$src/tests/slurm/slurm_cluster.sh"
slurm_install || { echo "SKIP: cannot install Slurm (needs root and apt)"; exit 77; }
tmp=$(mktemp -d /tmp/ctrain-slurm.XXXXXX)
trap 'slurm_stop "$tmp/cluster"; rm -rf "$tmp"' EXIT
slurm_start "$tmp/cluster" || { echo "FAIL: could not start Slurm"; exit 1; }
"$ctrain" prepare synthetic "$tmp/d.h5" --train 480 --test 48 --seed 11 >/dev/null
cd "$src"
submit() {
  name=$1
  shift
  sbatch --parsable --ntasks-per-node=2 --output="$tmp/$name.out" --export=ALL,CTRAIN="$ctrain" "$@" \
    slurm/train.sbatch configs/attn_cnn.ini --set data.path="$tmp/d.h5" --set data.val_size=48 \
    --set train.epochs=2 --set train.batch_size=24 --set run.checkpoint_every=4 \
    --set run.log_every=4 --set run.dir="$tmp/$name"
}
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
wait_done() {
  i=0
  while :; do
    s=$(state "$1")
    case "$s" in COMPLETED) return 0 ;; FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY)
      echo "FAIL: job $1 $s:"; cat "$tmp/$2.out"; slurm_diagnose "$tmp/cluster" "$1"; exit 1 ;; esac
    i=$((i + 1))
    [ $i -lt 600 ] || {
      echo "FAIL: job $1 still $s after 5 min"
      cat "$tmp/$2.out" 2>/dev/null || true
      slurm_diagnose "$tmp/cluster" "$1"
      exit 1
    }
    sleep 0.5
  done
}
a=$(submit a)
wait_done "$a" a
grep -q "^checkpoint: " "$tmp/a.out" || { echo "FAIL: job a did not finish training"; cat "$tmp/a.out"; exit 1; }
echo "ok: job $a (2 tasks) completed"
b=$(submit b)
until [ -f "$tmp/b/checkpoints/step_00000008.h5" ]; do sleep 0.2; done
scontrol requeue "$b"
echo "requeued job $b at $(ls "$tmp/b/checkpoints")"
i=0
until [ "$(state "$b")" = PENDING ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.2; done
scontrol release "$b" 2>/dev/null || true # some versions hold a requeued job
# Slurm delays a requeued job's start (BeginTime) by two minutes; a real
# cluster would wait, the test need not.
scontrol update JobId="$b" StartTime=now 2>/dev/null || true
wait_done "$b" b
grep -q "checkpointed at step" "$tmp/b.out" || { echo "FAIL: no checkpoint on requeue"; cat "$tmp/b.out"; exit 1; }
grep -q "resumed from" "$tmp/b.out" || { echo "FAIL: did not resume"; cat "$tmp/b.out"; exit 1; }
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py
d = sys.argv[1]
def state(run):
    out = {}
    with h5py.File(f"{d}/{run}/checkpoints/step_00000036.h5", "r") as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[()].tobytes()) if isinstance(v, h5py.Dataset) else None)
    return out
a, b = state("a"), state("b")
assert a.keys() == b.keys()
bad = [k for k in a if not k.startswith("rng/") and a[k] != b[k]]
assert not bad, f"requeued job differs in {bad[:5]}"
print("ok: requeued job resumed and ended bitwise identical to the uninterrupted one")
PY
