#!/bin/sh
# A rank that stops answering ends the job within run.comm_timeout_s: 2 ranks
# train (MPI path) with run.comm_timeout_s = 5, blocking then bucketed; after
# the first progress line (metrics.jsonl) rank 1 gets SIGSTOP, as a hung or swapped-out process
# would be. Rank 0's next collective must give up after 5 s with one line
# naming rank 0, the collective and the seconds, and end the job with a
# non-zero exit, within 60 s of the stop (the old blocking MPI calls waited
# for ever; the whole test runs under `timeout` so that failure shows as one).
# usage: comm_timeout.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
job=
cleanup() {
  # Leftover ranks, stopped or not, are this test's children's children.
  if [ -n "$job" ]; then
    for p in $(pgrep -P "$job" 2>/dev/null || true); do
      kill -CONT "$p" 2>/dev/null || true
      kill -KILL "$p" 2>/dev/null || true
    done
    kill -KILL "$job" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # `timeout` stops a hang with SIGTERM: clean up then too
"$ctrain" prepare synthetic "$tmp/d.h5" --train 480 --test 48 --seed 3 >/dev/null

# The rank of a process of this job, from the environment mpirun gave it.
rank_of() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'; }

# One run with run.allreduce = $1 and run.log_every = $2, more settings
# after. Blocking, log_every 1: rank 0 most likely waits in a sum (the
# gradient mean, sync BN, the log line's), a blocking MPI_Allreduce under the
# comm's watchdog timer. Bucketed, log_every 5, no sync BN: most likely in
# the buckets' MPI_Waitall or the stop flag's all-reduce, which are
# non-blocking with a deadline. Either way the line and the exit must come.
stop_rank1() {
  mode=$1 every=$2
  shift 2
  rm -rf "$tmp/run"
  (mpi_exec 2 "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" \
    --set data.val_size=48 --set train.epochs=1000 --set train.batch_size=24 \
    --set run.threads=1 --set run.log_every="$every" --set run.comm_timeout_s=5 \
    --set run.allreduce="$mode" --set run.dir="$tmp/run" "$@" >"$tmp/log" 2>&1) &
  job=$!
  tries=0
  until [ -s "$tmp/run/metrics.jsonl" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 1200 ] || { echo "FAIL: $mode: no progress line in 120 s"; cat "$tmp/log"; exit 1; }
    kill -0 "$job" 2>/dev/null || { echo "FAIL: $mode: the job ended before its first progress line"; cat "$tmp/log"; exit 1; }
    sleep 0.1
  done
  victim=
  for p in $(pgrep -P "$job"); do
    [ "$(rank_of "$p")" = 1 ] && victim=$p
  done
  [ -n "$victim" ] || { echo "FAIL: $mode: no process of rank 1 under mpirun $job"; exit 1; }
  kill -STOP "$victim"
  start=$(date +%s)
  rc=0
  wait "$job" || rc=$?
  job=
  elapsed=$(($(date +%s) - start))
  kill -CONT "$victim" 2>/dev/null || true
  kill -KILL "$victim" 2>/dev/null || true

  fail=0
  [ "$rc" -ne 0 ] || { echo "FAIL: $mode: the job exited 0 with rank 1 stopped"; fail=1; }
  [ "$elapsed" -ge 4 ] || { echo "FAIL: $mode: ended after ${elapsed} s, before the 5 s timeout"; fail=1; }
  [ "$elapsed" -lt 60 ] || { echo "FAIL: $mode: ended after ${elapsed} s (timeout 5 s)"; fail=1; }
  pattern='rank 0: MPI_[A-Za-z]* ([a-z ]*)\{0,1\} *waited [0-9]* s for the other ranks; ending the job (run.comm_timeout_s)'
  lines=$(grep -c "$pattern" "$tmp/log" || true)
  [ "$lines" -eq 1 ] || { echo "FAIL: $mode: $lines lines name the timeout, want 1"; fail=1; }
  if [ "$fail" -ne 0 ]; then
    cat "$tmp/log"
    exit 1
  fi
  echo "ok: $mode: rank 1 stopped, the job ended after ${elapsed} s with exit $rc: $(grep -o "$pattern" "$tmp/log")"
}
stop_rank1 blocking 1
stop_rank1 bucketed 5 --set model.sync_bn=false
