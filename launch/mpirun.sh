#!/bin/sh
# One node: N ranks of build/ctrain under mpirun, each bound to its own
# cores with OpenMP threads = cores / N (ctrain computes the same default
# from the ranks on the node; OMP_NUM_THREADS is set so BLAS agrees).
#   launch/mpirun.sh [-n RANKS] train CONFIG.ini [--set ...]
# RANKS defaults to 2 (or the core count if smaller).
set -eu
cd "$(dirname "$0")/.."
cores=$(nproc)
n=2
if [ "${1:-}" = "-n" ]; then
  n=$2
  shift 2
fi
[ "$n" -le "$cores" ] || { echo "launch/mpirun.sh: $n ranks > $cores cores" >&2; exit 2; }
threads=$((cores / n))
root=""
[ "$(id -u)" -eq 0 ] && root=--allow-run-as-root
# ppr:N:node:pe=T places N ranks, each bound to T cores of its own, so the
# OpenMP threads of one rank never share a core with another rank's.
exec mpirun $root -np "$n" --map-by "ppr:$n:node:pe=$threads" --bind-to core \
  -x OMP_NUM_THREADS="$threads" -x OMP_PROC_BIND=close -x OPENBLAS_NUM_THREADS=1 \
  build/ctrain "$@" --set run.threads="$threads"
