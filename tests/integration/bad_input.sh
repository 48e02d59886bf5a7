#!/bin/sh
# Bad input ends in ONE line on stderr naming the file and the problem, exit
# code 2 for usage/config errors and 1 for runtime errors, and never a crash.
# usage: bad_input.sh CTRAIN SOURCE_DIR
set -u
ctrain=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
cfg="$src/configs/attn_cnn.ini"

. "$src/tests/integration/expect.sh"

"$ctrain" prepare synthetic "$tmp/good.h5" --train 200 --test 50 --seed 1 >/dev/null || exit 1
train() { "$ctrain" train "$cfg" --set run.dir="$tmp/run" --set data.val_size=0 "$@"; }

# configuration and usage errors: exit 2
expect 2 "missing.ini" -- "$ctrain" train "$tmp/missing.ini"
printf '[train]\nlrr = 0.1\n' >"$tmp/typo.ini"
expect 2 "did you mean 'train.lr'" -- "$ctrain" train "$tmp/typo.ini"
expect 2 "train.batch_size" -- train --set data.path="$tmp/good.h5" --set train.batch_size=0
expect 2 "larger than the 200 training images" -- train --set data.path="$tmp/good.h5" --set train.batch_size=256
expect 2 "did you mean 'train.epochs'" -- train --set train.epoch=3
expect 2 "run.threads: '100000' is out of range [0, 1024]" -- train --set run.threads=100000
expect 2 "train.lr: '-0.1' is out of range (0, inf)" -- train --set train.lr=-0.1
expect 2 "model.dropout: '1.5' is out of range [0, 1)" -- train --set model.dropout=1.5
expect 2 "run.collectives = nccl needs run.device = cuda" -- train --set data.path="$tmp/good.h5" \
  --set run.device=cpu --set run.collectives=nccl
expect 2 "train.batch_size: '0' is out of range [1, " -- train --set train.batch_size=0
printf '[run]\nthreads = 100000\n' >"$tmp/threads.ini"
expect 2 "threads.ini:2: run.threads: '100000' is out of range [0, 1024]" -- "$ctrain" train "$tmp/threads.ini"
expect 2 "unknown command" -- "$ctrain" frobnicate

# runtime errors: exit 1, naming the file
expect 1 "$tmp/none.h5" -- train --set data.path="$tmp/none.h5"
head -c 5000 /dev/urandom >"$tmp/corrupt.h5"
expect 1 "$tmp/corrupt.h5" -- train --set data.path="$tmp/corrupt.h5"
head -c 3000 "$tmp/good.h5" >"$tmp/truncated.h5"
expect 1 "$tmp/truncated.h5" -- train --set data.path="$tmp/truncated.h5"
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
src = h5py.File(f"{d}/good.h5", "r")
def copy(name, edit):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        for split in ("train", "test"):
            for key in ("images", "labels"):
                f[f"{split}/{key}"] = src[f"{split}/{key}"][()]
        edit(f)
def float_images(f):
    x = f["train/images"][()].astype(np.float32)
    del f["train/images"]
    f["train/images"] = x
def bad_label(f):
    y = f["train/labels"][()]
    y[7] = 12
    del f["train/labels"]
    f["train/labels"] = y
def no_test(f):
    del f["test"]
def bad_shape(f):
    x = f["train/images"][()][:, :, :16, :]
    del f["train/images"]
    f["train/images"] = x
def nan_mean(f):
    m = f.attrs["mean"].copy()
    m[1] = np.nan
    f.attrs["mean"] = m
copy("float_images", float_images)
copy("nan_mean", nan_mean)
with h5py.File(f"{d}/huge.h5", "w") as f:
    for k, v in src.attrs.items():
        f.attrs[k] = v
    # declared extent only: chunked, nothing written, so the file stays tiny
    f.create_dataset("train/images", shape=(2**31, 3, 32, 32), dtype="u1", chunks=(1, 3, 32, 32))
    f.create_dataset("train/labels", shape=(2**31,), dtype="u1", chunks=(4096,))
    for key in ("images", "labels"):
        f[f"test/{key}"] = src[f"test/{key}"][()]
copy("bad_label", bad_label)
copy("no_test", no_test)
copy("bad_shape", bad_shape)
PY
expect 1 "/train/images" -- train --set data.path="$tmp/float_images.h5"
expect 1 "label" -- train --set data.path="$tmp/bad_label.h5"
expect 1 "attribute 'mean' channel 1 is nan, not a finite number" -- train --set data.path="$tmp/nan_mean.h5"
expect 1 "2147483648 rows, too many: rows are indexed by a 32-bit int" -- train --set data.path="$tmp/huge.h5"
expect 1 "/test" -- train --set data.path="$tmp/no_test.h5"
expect 1 "/train/images" -- train --set data.path="$tmp/bad_shape.h5"
expect 1 "/proc/ctrain-run" -- "$ctrain" train "$cfg" --set data.path="$tmp/good.h5" --set run.dir=/proc/ctrain-run
expect 1 "$tmp/nockpt.h5" -- "$ctrain" eval "$tmp/nockpt.h5" --data "$tmp/good.h5"
expect 1 "$tmp/good.h5: not a ctrain checkpoint" -- "$ctrain" eval "$tmp/good.h5" --data "$tmp/good.h5"

# importers
mkdir -p "$tmp/imgs/train/cat" "$tmp/imgs/test/cat"
printf 'not a jpeg' >"$tmp/imgs/train/cat/0001.jpg"
cp "$tmp/imgs/train/cat/0001.jpg" "$tmp/imgs/test/cat/0001.jpg"
expect 1 "0001.jpg" -- "$ctrain" prepare images "$tmp/imgs" "$tmp/imgs.h5"
test ! -e "$tmp/imgs.h5" || { echo "FAIL: a failed import left $tmp/imgs.h5"; fail=1; }
mkdir -p "$tmp/cifar"
for b in 1 2 3 4 5; do head -c 3073 /dev/zero >"$tmp/cifar/data_batch_$b.bin"; done
head -c 3000 /dev/zero >"$tmp/cifar/test_batch.bin"
expect 1 "test_batch.bin" -- "$ctrain" prepare cifar10 "$tmp/cifar" "$tmp/c.h5"
expect 2 "prepare" -- "$ctrain" prepare synthetic

exit $fail
