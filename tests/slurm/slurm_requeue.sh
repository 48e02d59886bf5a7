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
trap 'exit 1' INT TERM HUP # ctest's timeout too: the EXIT trap stops the daemons
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
# Any checkpoint will do (run.keep rotates the early ones away, so waiting
# for one name could wait for ever), while the job still runs.
until ls "$tmp/b/checkpoints/"step_*.h5 >/dev/null 2>&1; do
  case "$(state "$b")" in PENDING | RUNNING) sleep 0.2 ;; *)
    echo "FAIL: job $b ended before its first checkpoint"; cat "$tmp/b.out"; exit 1 ;; esac
done
scontrol requeue "$b"
echo "requeued job $b at $(ls "$tmp/b/checkpoints")"
i=0
until [ "$(state "$b")" = PENDING ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.2; done
slurm_start_requeued "$b"
wait_done "$b" b
grep -q "checkpointed at step" "$tmp/b.out" || { echo "FAIL: no checkpoint on requeue"; cat "$tmp/b.out"; exit 1; }
grep -q "resumed from" "$tmp/b.out" || { echo "FAIL: did not resume"; cat "$tmp/b.out"; exit 1; }
/usr/bin/python3 "$src/tests/slurm/same_params.py" "$tmp/a/checkpoints/step_00000036.h5" \
  "$tmp/b/checkpoints/step_00000036.h5"
echo "ok: requeued job resumed and ended bitwise identical to the uninterrupted one"
