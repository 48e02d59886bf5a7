#!/bin/sh
# The rooms of docs/architecture.md, kept true: fails naming the file and
# the include (or call) that crosses a wall.
# usage: rooms.sh SOURCE_DIR
set -eu
cd "$1"
bad=0
# quoted includes of the C/C++/CUDA files under $1 (dir) whose first path
# component is not in the allowed list $2
only_includes() {
  dir=$1 allowed=$2
  find "$dir" -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' -o -name '*.cpp' |
    sort | while read -r f; do
      sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
        while read -r inc; do
          case "$inc" in */*) room=${inc%%/*} ;; *) continue ;; esac # same-directory
          case " $allowed " in *" $room "*) ;; *) echo "$f includes \"$inc\" ($dir may include only: $allowed)" ;; esac
        done
    done
}
# files outside the allowed paths that match the pattern: in their text
# (raw) or in their code with string literals left out (code)
only_in() {
  what=$1 pattern=$2 strip=$3
  shift 3
  find src comm kernels -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' -o -name '*.cpp' |
    sort | while read -r f; do
    if [ "$strip" = code ]; then sed 's/"\([^"\\]\|\\.\)*"/""/g' "$f"; else cat "$f"; fi |
      grep -qE "$pattern" || continue
    ok=0
    for p in "$@"; do case "$f" in "$p"*) ok=1 ;; esac; done
    [ $ok = 1 ] || echo "$f uses $what (allowed only in: $*)"
  done
}
out=$(
  only_includes kernels "kernels"
  only_includes comm "comm core kernels"
  only_includes src/graph "core graph kernels"
  only_includes src/nn "core graph kernels nn"
  only_includes src/models "core graph kernels nn models"
  only_in MPI '#[[:space:]]*include[[:space:]]*<mpi\.h>|\bMPI_[A-Z][a-z_]*\(' code comm/
  only_in NCCL '#[[:space:]]*include[[:space:]]*<nccl\.h>' raw comm/ kernels/cuda/emu/
  only_in HDF5 '#[[:space:]]*include[[:space:]]*<hdf5\.h>' raw src/h5/
  # the room's users: data, checkpoints, the viz verbs
  only_in 'the HDF5 room' '#[[:space:]]*include[[:space:]]*"h5/' raw src/h5/ src/data/ src/ckpt/ \
    src/viz/
  only_in 'HDF5 calls' '(^|[^A-Za-z0-9_])H5[A-Z][A-Za-z0-9_]*[[:space:]]*\(' code src/h5/
)
if [ -n "$out" ]; then
  echo "$out" | sed 's/^/FAIL: /'
  exit 1
fi
echo "ok: every include and call stays in its room"
