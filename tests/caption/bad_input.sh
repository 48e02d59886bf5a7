#!/bin/sh
# Bad captioning input ends in ONE line on stderr naming the file and the
# problem (exit 2 usage/configuration, 1 runtime), never a crash: an image
# dataset given to the caption model (train and sample), a captioning file
# given to a classifier (train and eval), a classifier checkpoint given to
# sample, a captioning checkpoint given to eval, a
# model.max_length that is not the file's, a global batch larger than the
# training captions or not dividing over the ranks (naming both numbers), a
# split sample cannot take.
# usage: bad_input.sh CTRAIN SOURCE_DIR
set -u
ctrain=$1 src=$2
. "$src/tests/integration/mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

. "$src/tests/integration/expect.sh"

"$ctrain" prepare synthetic "$tmp/images.h5" --train 60 --test 20 --seed 1 >/dev/null || exit 1
"$ctrain" prepare synthetic-coco "$tmp/src" --train 40 --val 10 --seed 1 >/dev/null || exit 1
"$ctrain" prepare coco "$tmp/src" "$tmp/coco.h5" >/dev/null || exit 1
cap="$src/configs/caption_transformer.ini" cls="$src/configs/attn_cnn.ini"
small="--set model.dim=32 --set model.ffn_dim=64 --set train.batch_size=20"
# shellcheck disable=SC2086 # $small is several words
captrain() { "$ctrain" train "$cap" $small --set run.dir="$tmp/cap" "$@"; }
# checkpoints of both kinds, at step 0
captrain --set data.path="$tmp/coco.h5" --set train.max_steps=0 >/dev/null 2>&1 &&
  "$ctrain" train "$cls" --set data.path="$tmp/images.h5" --set data.val_size=0 \
    --set train.batch_size=20 --set train.max_steps=0 --set run.dir="$tmp/cls" >/dev/null 2>&1 ||
  { echo "FAIL: could not make the checkpoints"; exit 1; }
capckpt="$tmp/cap/checkpoints/step_00000000.h5" clsckpt="$tmp/cls/checkpoints/step_00000000.h5"

expect 1 "$tmp/images.h5: not a captioning file" -- captrain --set data.path="$tmp/images.h5"
expect 2 "$tmp/coco.h5 is a captioning file" -- \
  "$ctrain" train "$cls" --set data.path="$tmp/coco.h5" --set run.dir="$tmp/x"
expect 1 "$tmp/images.h5: not a captioning file" -- "$ctrain" sample "$capckpt" --data "$tmp/images.h5"
expect 2 "$clsckpt holds a 'attn_cnn' model" -- "$ctrain" sample "$clsckpt" --data "$tmp/coco.h5"
expect 2 "$capckpt holds a captioning model (caption_transformer); \`ctrain sample\` evaluates it" -- \
  "$ctrain" eval "$capckpt" --data "$tmp/coco.h5"
expect 2 "$tmp/coco.h5 is a captioning file; the model in $clsckpt classifies images" -- \
  "$ctrain" eval "$clsckpt" --data "$tmp/coco.h5"
expect 2 "model.max_length = 20 but $tmp/coco.h5 has captions of 17 tokens" -- \
  captrain --set data.path="$tmp/coco.h5" --set model.max_length=20
expect 2 "train.batch_size = 100 is larger than the 80 training captions of $tmp/coco.h5" -- \
  captrain --set data.path="$tmp/coco.h5" --set train.batch_size=100
expect 2 "--split must be train or val" -- "$ctrain" sample "$capckpt" --data "$tmp/coco.h5" --split test
expect 2 "--n expects a non-negative integer" -- "$ctrain" sample "$capckpt" --data "$tmp/coco.h5" --n x
# 3 ranks, global batch 20: every rank names both numbers; one line per rank
mpi 3 "$ctrain" train "$cap" $small --set data.path="$tmp/coco.h5" --set run.dir="$tmp/div" \
  >/dev/null 2>"$tmp/div.err"
if grep -q "train.batch_size = 20 does not divide over 3 ranks" "$tmp/div.err"; then
  echo "ok: $(grep -m1 'does not divide' "$tmp/div.err")"
else
  echo "FAIL: 3 ranks with batch 20:"
  cat "$tmp/div.err"
  fail=1
fi
exit $fail
