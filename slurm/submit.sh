#!/bin/sh
# Submits slurm/train.sbatch: one task per GPU (--gpus-per-task=1) when the
# partition has GPUs, else CPU tasks sharing the node's cores.
#   slurm/submit.sh [-p PARTITION] [--nodes N] [--ntasks-per-node T] CONFIG.ini [--set ...]
set -eu
cd "$(dirname "$0")/.."
part=""
if [ "${1:-}" = "-p" ]; then
  part=$2
  shift 2
fi
gres=$(sinfo -h ${part:+-p "$part"} -o %G 2>/dev/null | tr ',' '\n' | grep -c '^gpu' || true)
extra=""
if [ "$gres" -gt 0 ]; then
  extra="--gpus-per-task=1"
  echo "submit.sh: partition has GPUs: one task per GPU"
else
  echo "submit.sh: no GPUs in the partition: CPU tasks"
fi
# shellcheck disable=SC2086 # extra is one option or none
exec sbatch ${part:+-p "$part"} $extra slurm/train.sbatch "$@"
