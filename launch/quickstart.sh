#!/bin/sh
# README command 1: install, build, make data, train attn_cnn for a short run,
# and print the validation accuracy and where the checkpoint is.
#   launch/quickstart.sh                      embedded synthetic dataset
#   CIFAR10=/path/to/cifar launch/quickstart.sh   real CIFAR-10: the official binary
#       release (directory or .tar.gz) or an image folder tree (directory or .tar.gz)
set -eu
cd "$(dirname "$0")/.."
launch/install_deps.sh
launch/build.sh
mkdir -p data
# Two ranks (data parallel, launch/mpirun.sh), one on a single-core machine.
ranks=2
[ "$(nproc)" -ge 2 ] || ranks=1
if [ -n "${CIFAR10:-}" ]; then
  out=data/cifar10.h5
  if [ ! -f "$out" ]; then
    kind=images
    if [ -d "$CIFAR10" ]; then
      if [ -e "$CIFAR10/data_batch_1.bin" ] || [ -d "$CIFAR10/cifar-10-batches-bin" ]; then kind=cifar10; fi
    elif tar tzf "$CIFAR10" 2>/dev/null | grep -q 'data_batch_1.bin'; then
      kind=cifar10
    fi
    build/ctrain prepare "$kind" "$CIFAR10" "$out" --val 5000 --seed 42
  fi
  launch/mpirun.sh -n "$ranks" train configs/attn_cnn.ini --set data.path=$out \
    --set data.val_size=0 --set train.epochs="${EPOCHS:-2}" --set run.dir=runs/quickstart-cifar10
else
  out=data/synthetic.h5
  [ -f "$out" ] || build/ctrain prepare synthetic "$out" --train 10000 --test 2000 --val 1000 --seed 42
  launch/mpirun.sh -n "$ranks" train configs/attn_cnn.ini --set data.path=$out \
    --set data.val_size=0 --set train.epochs="${EPOCHS:-3}" --set run.dir=runs/quickstart
fi
