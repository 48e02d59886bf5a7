#!/bin/sh
# Data-parallel numbers on this machine (docs/distributed.md):
#   tests/bench/bench_dist.sh [BUILD_DIR]
#   tests/bench/bench_dist.sh --nodes [BUILD_DIR [OUT]]   across nodes: bench_nodes.sh
# - attn_cnn, global batch 128: 1 rank x 2 threads against 2 ranks x 1 thread
#   (scaling efficiency = time per step of 1x2 / time per step of 2x1);
# - gradient all-reduce time per step on 2 ranks, blocking and bucketed
#   (the time backward's end waits for it; bucketed overlaps the rest);
# - checkpoint save and load (verify + load) time.
set -eu
cd "$(dirname "$0")/../.."
if [ "${1:-}" = --nodes ]; then
  shift
  exec sh tests/bench/bench_nodes.sh "$@"
fi
ctrain=${1:-build}/ctrain
. tests/integration/mpi_env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ctrain" prepare synthetic "$tmp/d.h5" --train 5000 --test 200 --seed 1 >/dev/null
steps=${STEPS:-30}
run() {
  n=$1 threads=$2 name=$3
  shift 3
  mpi "$n" "$ctrain" train configs/attn_cnn.ini --set data.path="$tmp/d.h5" --set data.val_size=0 \
    --set train.max_steps="$steps" --set run.threads="$threads" --set run.dir="$tmp/$name" \
    --set run.log_every=1000 "$@" >"$tmp/$name.log" 2>&1
  sed -n 's/^timing: //p' "$tmp/$name.log"
}
echo "1 rank x 2 threads:            $(run 1 2 r1x2)"
echo "2 ranks x 1 thread, blocking:  $(run 2 1 r2b --set run.allreduce=blocking)"
echo "2 ranks x 1 thread, bucketed:  $(run 2 1 r2k --set run.allreduce=bucketed --set run.bucket_kib=${BUCKET_KIB:-32})"
/usr/bin/python3 - "$tmp" <<'PY'
import re, sys
d = sys.argv[1]
def ms(name):
    return float(re.search(r"([\d.]+) ms per step", open(f"{d}/{name}.log").read()).group(1))
one, blocking, bucketed = ms("r1x2"), ms("r2b"), ms("r2k")
print(f"scaling efficiency 2x1 vs 1x2: {one / blocking:.2f} (blocking), {one / bucketed:.2f} (bucketed)")
PY
grep "checkpoint written" "$tmp/r2k.log"
mpi 2 "$ctrain" train configs/attn_cnn.ini --set data.path="$tmp/d.h5" --set data.val_size=0 \
  --set train.max_steps="$((steps + 1))" --set run.threads=1 --set run.dir="$tmp/r2k" \
  --set run.resume=auto 2>&1 | sed -n 's/^resumed from .*(\(.*\))/checkpoint load: \1/p'
