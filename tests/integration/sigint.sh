#!/bin/sh
# Ctrl-C on a single rank: the first SIGINT checkpoints and exits like SIGTERM
# (exit 0, the checkpoint verifies, resume=auto continues from it); a second
# SIGINT right after the first exits at once with 130, leaving the earlier
# checkpoints intact.
# usage: sigint.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/d.h5" --train 2000 --test 64 --seed 5 >/dev/null
train() {
  "$ctrain" train "$src/configs/attn_cnn.ini" --set data.path="$tmp/d.h5" --set data.val_size=0 \
    --set train.epochs=50 --set train.batch_size=16 --set run.threads=1 --set run.log_every=1 \
    --set run.checkpoint_every=5 --set run.dir="$tmp/run" "$@" &
  pid=$!
}
# until the run has logged a step past $1 (at most 120 s)
wait_step() {
  i=0
  until [ "$(grep -c '"split": *"train"' "$tmp/run/metrics.jsonl" 2>/dev/null || echo 0)" -gt "$1" ]; do
    i=$((i + 1))
    [ $i -lt 1200 ] || { echo "FAIL: the run did not reach step $1"; exit 1; }
    sleep 0.1
  done
}
train >"$tmp/first.log" 2>&1
wait_step 7
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: one SIGINT -> exit $rc, want 0 (as SIGTERM)"; cat "$tmp/first.log"; exit 1; }
ckpt=$(sed -n 's/.*checkpointed at step [0-9]*: //p' "$tmp/first.log")
[ -n "$ckpt" ] && "$ctrain" inspect "$ckpt" >/dev/null ||
  { echo "FAIL: no verified checkpoint after SIGINT"; cat "$tmp/first.log"; exit 1; }
echo "ok: one SIGINT checkpointed $ckpt"
lines=$(grep -c '"split": *"train"' "$tmp/run/metrics.jsonl")
train --set run.resume=auto >"$tmp/second.log" 2>&1
wait_step $((lines + 6))
kill -INT "$pid"
sleep 0.02 # two signals sent back to back coalesce into one delivery
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 130 ] || { echo "FAIL: two SIGINTs -> exit $rc, want 130"; cat "$tmp/second.log"; exit 1; }
grep -q "resumed from $ckpt" "$tmp/second.log" ||
  { echo "FAIL: resume=auto did not continue from $ckpt"; cat "$tmp/second.log"; exit 1; }
n=0
for f in "$tmp"/run/checkpoints/step_*.h5; do
  "$ctrain" inspect "$f" >/dev/null || { echo "FAIL: $f does not verify after two SIGINTs"; exit 1; }
  n=$((n + 1))
done
[ "$n" -ge 2 ] || { echo "FAIL: $n checkpoints left, want >= 2"; exit 1; }
echo "ok: two SIGINTs exit 130, resumed from $ckpt, $n checkpoints verify"
