#!/bin/sh
# op_coverage.sh — every op of kernels/ops.h is tested on both backends: a
# gradient check calls it (`->op(` in tests/grad/test_grad_*.c) and the
# emulator case runs its CUDA implementation (`GPU->op(` in
# tests/cuda/test_cuda_*.c). The op names are struct ops_backend's
# members as tests/grad/tests.cmake parses them from ops.h (op_table checks
# that parse against the struct's size).
# Usage: op_coverage.sh <source dir> <op>...
set -eu
src=$1
shift
[ $# -gt 0 ] || { echo "FAIL: no op names given"; exit 1; }

# Entries with no backward to check, each tested against a reference
# elsewhere; an entry no longer in ops.h fails, so the list cannot go stale.
no_gradient="
alloc release memset0 upload download upload_async: memory, not maths (every test uses them)
adam_step sgd_step: optimizer updates, against torch.optim's formulas in tests/unit/test_optim_kernels.c
augment: the input pipeline, its maths in tests/unit/test_augment.c, the op in tests/unit/test_loader.c
"
exempt=$(printf '%s\n' "$no_gradient" | sed -n 's/^\([^:]*\):.*/\1/p')
# Entries the emulator runs through other callers than GPU->op(.
no_case="
graph_capture_begin graph_capture_end graph_launch graph_free: CUDA Graphs, captured and launched in tests/cuda/test_cuda_budget.c (ops->) and by the trainer in test_cuda_train and test_nccl_train
"
exempt_case=$(printf '%s\n' "$no_case" | sed -n 's/^\([^:]*\):.*/\1/p')

bad=0
for e in $exempt $exempt_case; do
  case " $* " in
  *" $e "*) ;;
  *)
    echo "FAIL: $e is exempt from the gradient check but is no op of ops.h"
    bad=1
    ;;
  esac
done

for op in "$@"; do
  is_exempt=0 no_case_needed=0
  for e in $exempt $exempt_case; do [ "$e" = "$op" ] && is_exempt=1; done
  for e in $exempt_case; do [ "$e" = "$op" ] && no_case_needed=1; done
  if [ $is_exempt = 0 ] && ! grep -q -e "->$op(" "$src"/tests/grad/test_grad_*.c; then
    echo "FAIL: $op has no gradient check (no ->$op( in tests/grad/test_grad_*.c)"
    bad=1
  fi
  if [ $no_case_needed = 1 ]; then
    grep -q -e "->$op(" "$src"/tests/cuda/test_cuda_budget.c || {
      echo "FAIL: $op is run by no emulator test (no ->$op( in tests/cuda/test_cuda_budget.c)"
      bad=1
    }
  elif ! grep -q -e "GPU->$op(" "$src"/tests/cuda/test_cuda_*.c; then
    echo "FAIL: $op has no emulator case (no GPU->$op( in tests/cuda/test_cuda_*.c)"
    bad=1
  fi
done
[ $bad = 0 ] && echo "$# ops: each has a gradient check (or a stated exemption) and an emulator case"
exit $bad
