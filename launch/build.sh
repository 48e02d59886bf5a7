#!/bin/sh
# Configures and builds ctrain into build/ (the binary is build/ctrain);
# arguments go to CMake's configure step (e.g. -DCTRAIN_GPU_TESTS=ON). The
# compiler's output (with nvcc, hundreds of ptxas lines) goes to build/build.log;
# one line per stage here, and the log's last lines and path on failure.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build
log=build/build.log
stage() {
  echo "build: $1"
  shift
  if ! "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build: failed; the whole log is $(pwd)/$log" >&2
    exit 1
  fi
}
: >"$log"
stage "configuring (log: $log)" cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
grep -E '^-- ctrain:' "$log" || true
stage "compiling on $(nproc) cores" cmake --build build -j"$(nproc)"
echo "build: done, build/ctrain"
