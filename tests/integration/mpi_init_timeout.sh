#!/bin/sh
# MPI_Init is bounded too: with CTRAIN_COMM_TIMEOUT_S = 2 in the
# environment, 2 ranks of which rank 1 starts ctrain only after 60 s (as a
# rank stuck before MPI would). Open MPI's MPI_Init waits for every rank, so
# rank 0 must give up after 2 s with one line naming MPI_Init and the
# setting, and the job must end non-zero well before rank 1 would have come.
# A value outside 1..86400 is refused, naming the variable.
# usage: mpi_init_timeout.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

start=$(date +%s)
rc=0
# shellcheck disable=SC2016 # expanded by each rank's shell
CTRAIN_COMM_TIMEOUT_S=2 mpi 2 sh -c '[ "$OMPI_COMM_WORLD_RANK" != 1 ] || sleep 60; exec "$0" eval' \
  "$ctrain" >"$tmp/log" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))
line='MPI_Init waited 2 s for the launcher and the other ranks; ending this process (CTRAIN_COMM_TIMEOUT_S)'
[ "$rc" -ne 0 ] || { echo "FAIL: the job exited 0 with rank 1 not started"; fail=1; }
[ "$elapsed" -ge 2 ] || { echo "FAIL: ended after ${elapsed} s, before the 2 s timeout"; fail=1; }
[ "$elapsed" -lt 40 ] || { echo "FAIL: ended after ${elapsed} s (timeout 2 s)"; fail=1; }
lines=$(grep -c -F "$line" "$tmp/log" || true)
[ "$lines" -eq 1 ] || { echo "FAIL: $lines lines name the MPI_Init timeout, want 1"; fail=1; }
[ "$fail" -eq 0 ] || { cat "$tmp/log"; exit 1; }
echo "ok: rank 1 late, the job ended after ${elapsed} s with exit $rc: $line"

rc=0
CTRAIN_COMM_TIMEOUT_S=0.5 "$ctrain" eval >"$tmp/log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] || ! grep -q -F 'CTRAIN_COMM_TIMEOUT_S=0.5: expected seconds from 1 to 86400' "$tmp/log"; then
  echo "FAIL: CTRAIN_COMM_TIMEOUT_S=0.5 was not refused (exit $rc)"
  cat "$tmp/log"
  exit 1
fi
echo "ok: CTRAIN_COMM_TIMEOUT_S=0.5 refused: $(cat "$tmp/log")"
