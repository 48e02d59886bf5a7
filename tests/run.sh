#!/bin/sh
# README command 2: install what the tests need, build, run every test.
set -eu
cd "$(dirname "$0")/.."
launch/install_deps.sh --tests
launch/build.sh -DCTRAIN_GPU_TESTS=ON # the gpu label: skipped without a GPU, run with one
ctest --test-dir build --output-on-failure -j2 "$@"
