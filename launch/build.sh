#!/bin/sh
# Configures and builds ctrain into build/ (the binary is build/ctrain).
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
