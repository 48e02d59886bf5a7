# Sourced by the parity scripts: OPENBLAS_CORETYPE, when set, must be a kernel
# set this CPU can run (else the test is skipped, exit 77), and OpenBLAS must
# report that it took it (it falls back silently on a name it does not know).
# usage: ctrain=PATH; . blas_core.sh
case "${OPENBLAS_CORETYPE:-}" in
"") ;;
SkylakeX) need=avx512f ;;
Haswell) need=avx2 ;;
*) need= ;;
esac
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  if [ -n "$need" ] && ! grep -qw "$need" /proc/cpuinfo; then
    echo "skipped: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE needs $need, which this CPU lacks"
    exit 77
  fi
  core=$(OPENBLAS_VERBOSE=2 "$ctrain" --version 2>&1 | sed -n 's/^Core: //p' | head -n 1)
  if [ "$core" != "$OPENBLAS_CORETYPE" ]; then
    echo "FAIL: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE but OpenBLAS runs its '$core' kernels"
    exit 1
  fi
  echo "OpenBLAS kernels: $core"
fi
