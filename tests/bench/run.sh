#!/bin/sh
# ctrain against PyTorch, side by side in one run: training-step and inference
# images/s and peak RSS on random data, ROUNDS alternating runs each, medians
# and the ratio. Both use THREADS threads; ctrain's bench applies the same
# environment tuning as the ctrain binary (src/cli/env.c).
# usage: tests/bench/run.sh [MODEL] [BATCH] [THREADS] [STEPS] [ROUNDS]
set -eu
cd "$(dirname "$0")/../.."
model=${1:-attn_cnn} batch=${2:-128} threads=${3:-2} steps=${4:-40} rounds=${5:-3}
[ -x build/tests/bench_step ] || { echo "build first: launch/build.sh" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  build/tests/bench_step "$model" "$batch" "$threads" "$steps" >>"$out"
  OMP_NUM_THREADS=$threads /usr/bin/python3 tests/bench/bench_torch.py --model "$model" \
    --batch "$batch" --threads "$threads" --steps "$steps" >>"$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(impl, key):
    return statistics.median(r[key] for r in rows if r["impl"] == impl)
print(f"{'':8} {'train img/s':>12} {'infer img/s':>12} {'peak RSS MB':>12}")
for impl in ("ctrain", "pytorch"):
    print(f"{impl:8} {med(impl, 'train_images_per_s'):12.0f} {med(impl, 'infer_images_per_s'):12.0f}"
          f" {med(impl, 'peak_rss_mb'):12.0f}")
print(f"{'ratio':8} {med('ctrain', 'train_images_per_s') / med('pytorch', 'train_images_per_s'):11.2f}x"
      f" {med('ctrain', 'infer_images_per_s') / med('pytorch', 'infer_images_per_s'):11.2f}x")
PY
