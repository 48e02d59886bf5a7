#!/bin/sh
# PyTorch parity of caption_transformer: ctrain's initial parameters, loss,
# gradients and STEPS optimizer steps on the first BATCH captions of a
# synthetic COCO set (CS231n layout, imported by `ctrain prepare coco`),
# checked by parity.py. Dropout is switched off (parity compares functions,
# not random streams); further --set overrides go to parity_dump.
# usage: parity_caption.sh CTRAIN PARITY_DUMP CONFIG PARITY_PY BATCH STEPS [--set k=v ...]
set -eu
ctrain=$1 dump=$2 config=$3 check=$4 batch=$5 steps=$6
shift 6
. "$(dirname "$0")/blas_core.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic-coco "$tmp/src" --train 40 --val 10 --seed 7
"$ctrain" prepare coco "$tmp/src" "$tmp/coco.h5"
"$dump" "$config" "$tmp/dump.h5" --steps "$steps" --set "data.path=$tmp/coco.h5" \
  --set "train.batch_size=$batch" --set model.dropout=0 "$@"
/usr/bin/python3 "$check" "$tmp/dump.h5"
