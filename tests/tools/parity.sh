#!/bin/sh
# PyTorch parity of one model: ctrain's initial parameters, loss, gradients
# and STEPS optimizer steps on a fixed batch of BATCH synthetic images,
# checked by parity.py. Dropout is switched off (parity compares functions,
# not random streams); further --set overrides go to parity_dump.
# usage: parity.sh CTRAIN PARITY_DUMP CONFIG PARITY_PY BATCH STEPS [--set k=v ...]
set -eu
ctrain=$1 dump=$2 config=$3 check=$4 batch=$5 steps=$6
shift 6
. "$(dirname "$0")/blas_core.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/data.h5" --train 256 --test 64 --seed 7
"$dump" "$config" "$tmp/dump.h5" --steps "$steps" --set "data.path=$tmp/data.h5" \
  --set "train.batch_size=$batch" --set model.dropout=0 "$@"
/usr/bin/python3 "$check" "$tmp/dump.h5"
