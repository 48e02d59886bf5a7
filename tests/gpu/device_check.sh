#!/bin/sh
# The one-script device check (docs/gpu.md): on a machine with one NVIDIA
# GPU, from the bundle of launch/gpu_bundle.sh (the machine needs the driver
# and the CUDA runtime, nothing of ours), writes everything to one log:
#  1. nvidia-smi: the GPU, its driver and memory;
#  2. the gpu label: every *_gpu test of the bundle (ops, elementwise ops, a
#     whole step, training + checkpoint + eval against the CPU);
#  3. compute-sanitizer memcheck and racecheck on the step test;
#  4. bench_step --device cuda for attn_cnn (batch 128), resnet10 and vit
#     (batch 64), FP32 and TF32, and one --profile of attn_cnn;
#  5. a 200-step `ctrain train --set run.device=cuda` of attn_cnn on
#     synthetic data, with its images/s;
#  6. its checkpoint evaluated by `ctrain eval` on cuda and on the CPU: the
#     two reports must agree (accuracy within one image, loss within 1e-4
#     relative: float32 GEMMs in another order, FMA; docs/gpu.md).
# Each step runs under a time limit; the log ends with a table of every
# step's outcome and seconds. Exit status: 0 when every step passed (or was
# skipped for a stated reason), 1 otherwise. Meant to finish in under 8
# minutes on an H100/H200.
# usage: device_check.sh BUNDLE.tar.gz|BUNDLE_DIR LOG
set -u
[ $# -eq 2 ] || {
  echo "usage: device_check.sh BUNDLE.tar.gz|BUNDLE_DIR LOG" >&2
  exit 2
}
bundle=$1 log=$2
: >"$log" || exit 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -f "$bundle" ]; then
  tar -xzf "$bundle" -C "$work" || {
    echo "device_check: cannot unpack $bundle" | tee -a "$log" >&2
    exit 2
  }
  bundle=$work/ctrain-gpu
fi
b=$(cd "$bundle" && pwd) || exit 2
[ -x "$b/bin/ctrain" ] || {
  echo "device_check: $b/bin/ctrain missing: not a bundle of launch/gpu_bundle.sh" | tee -a "$log" >&2
  exit 2
}
summary=$work/summary
failed=0
say() { echo "$*" | tee -a "$log"; }
# step NAME LIMIT_S CMD...: runs CMD in the bundle directory, its output
# into the log; 77 counts as skipped.
step() {
  name=$1 limit=$2
  shift 2
  say ""
  say "==== $name: $*"
  t0=$(date +%s)
  (cd "$b" && timeout "$limit" "$@") >>"$log" 2>&1
  rc=$?
  s=$(($(date +%s) - t0))
  case $rc in
  0) what=passed ;;
  77) what=skipped ;;
  124) what="FAILED (over ${limit} s)" failed=1 ;;
  *) what="FAILED (exit $rc)" failed=1 ;;
  esac
  say "==== $name: $what in $s s"
  printf '%-44s %-22s %5s s\n' "$name" "$what" "$s" >>"$summary"
}

# The CUDA runtime, cuBLAS and NCCL are the machine's (the default bundle
# leaves them out): the toolkit's, or the pip wheels' beside PyTorch
# (nvidia-cuda-runtime, nvidia-cublas, nvidia-nccl), after the caller's path.
machine_libs() {
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && echo "$d"; done
  python3 -c 'import glob, nvidia; print("\n".join(sorted(glob.glob(list(nvidia.__path__)[0] + "/*/lib"))))' \
    2>/dev/null
}
for d in $(machine_libs); do LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d; done
export LD_LIBRARY_PATH

say "ctrain device check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit ${CTRAIN_COMMIT:-unknown}"
say "bundle: $b"
say "LD_LIBRARY_PATH (before the bundle's): ${LD_LIBRARY_PATH:-}"
# shellcheck disable=SC2016 # expanded by the inner shell
step "libraries resolve" 30 sh -c 'bundle=$PWD; . libexec/env.sh; ldd libexec/ctrain | grep -E "cuda|cublas|nccl|not found"; ! ldd libexec/ctrain | grep -q "not found"'
step "nvidia-smi" 60 sh -c 'nvidia-smi -L && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv'
step "ctrain version" 30 bin/ctrain version

for t in "$b"/bin/*_gpu; do
  [ -x "$t" ] || continue
  n=$(basename "$t")
  step "gpu/${n%_gpu}" 300 "bin/$n" configs/attn_cnn.ini
done

if command -v compute-sanitizer >/dev/null 2>&1 && [ -x "$b/libexec/test_cuda_step_gpu" ]; then
  for tool in memcheck racecheck; do
    step "compute-sanitizer $tool: test_cuda_step" 300 sh -c \
      "bundle=\$PWD; . libexec/env.sh; compute-sanitizer --tool $tool --error-exitcode 1 libexec/test_cuda_step_gpu"
  done
else
  say "compute-sanitizer or test_cuda_step_gpu missing: sanitizer steps not run"
  printf '%-44s %-22s\n' "compute-sanitizer" "NOT RUN" >>"$summary"
  failed=1
fi

for m in attn_cnn:128 resnet10:64 vit:64; do
  for tf in "" --tf32; do
    step "bench_step ${m%%:*} b${m#*:} ${tf:-fp32}" 120 bin/bench_step "${m%%:*}" "${m#*:}" 1 50 \
      --device cuda $tf
  done
done
step "bench_step attn_cnn b128 --profile" 120 bin/bench_step attn_cnn 128 1 20 --device cuda --profile

d=$work/data.h5 r=$work/run
step "prepare synthetic (26,600 images)" 120 bin/ctrain prepare synthetic "$d" --train 25600 \
  --test 1000 --seed 3
step "train attn_cnn 200 steps on cuda" 300 bin/ctrain train configs/attn_cnn.ini \
  --set data.path="$d" --set run.dir="$r" --set run.device=cuda --set train.max_steps=200 \
  --set train.batch_size=128 --set data.val_size=0 --set run.log_every=50 --set run.resume=none
grep -E 'timing:|images/s' "$log" | tail -n 2 | sed 's/^/  /' | tee -a "$log"
ck=$r/checkpoints/step_00000200.h5
for dev in cuda cpu; do
  step "eval on $dev" 300 bin/ctrain eval "$ck" --data "$d" --json "$work/eval_$dev.json" \
    --device "$dev"
done
step "eval: cuda and cpu agree" 30 python3 -c '
import json, sys
g, c = (json.load(open(p)) for p in sys.argv[1:3])
print("cuda", g["loss"], g["acc"], "cpu", c["loss"], c["acc"])
ok = abs(g["acc"] - c["acc"]) * c["images"] <= 1 and abs(g["loss"] - c["loss"]) <= 1e-4 * abs(c["loss"])
sys.exit(0 if ok else 1)' "$work/eval_cuda.json" "$work/eval_cpu.json"

say ""
say "==== summary"
tee -a "$log" <"$summary"
if [ $failed = 0 ]; then
  say "device check: every step passed"
else
  say "device check: some steps FAILED (above)"
fi
exit $failed
