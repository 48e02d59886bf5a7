#!/bin/sh
# ctrain against PyTorch on the captioning Transformer, side by side in one
# run: training tokens/s (batch x 16 caption positions per step; forward,
# backward, Adam, dropout on) and peak RSS on random COCO-shaped data, ROUNDS
# alternating runs each, medians and the ratio. The model is MODELS.md §5's
# (width 256, 2 heads, 2 layers, FFN 2048, 1004 words, 512-d features) at the
# recipe's batch 100. Both use THREADS threads; ctrain's bench applies the
# ctrain binary's environment tuning (src/cli/env.c).
# usage: tests/bench/run_caption.sh [BATCH] [THREADS] [STEPS] [ROUNDS] [BUILD_DIR]
set -eu
cd "$(dirname "$0")/../.."
batch=${1:-100} threads=${2:-2} steps=${3:-20} rounds=${4:-3} build=${5:-build}
bench="$build/tests/bench_caption_step"
[ -x "$bench" ] || { echo "build first: launch/build.sh (or pass BUILD_DIR)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  "$bench" "$batch" "$threads" "$steps" >>"$out"
  OMP_NUM_THREADS=$threads /usr/bin/python3 tests/bench/bench_caption_torch.py \
    --batch "$batch" --threads "$threads" --steps "$steps" >>"$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(impl, key):
    return statistics.median(r[key] for r in rows if r["impl"] == impl)
r0 = rows[0]
print(f"caption_transformer, batch {r0['batch']} ({r0['tokens_per_step']} tokens a step), "
      f"{r0['threads']} threads, {len(rows) // 2} rounds")
print(f"{'':8} {'train tok/s':>12} {'peak RSS MB':>12}")
for impl in ("ctrain", "pytorch"):
    print(f"{impl:8} {med(impl, 'train_tokens_per_s'):12.0f} {med(impl, 'peak_rss_mb'):12.0f}")
print(f"{'ratio':8} {med('ctrain', 'train_tokens_per_s') / med('pytorch', 'train_tokens_per_s'):11.2f}x")
PY
