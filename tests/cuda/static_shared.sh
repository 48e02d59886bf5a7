#!/bin/sh
# static_shared.sh — no kernel may declare more than 48 KiB of static
# __shared__ memory (the limit without an opt-in). In the emulator every
# static __shared__ variable lands in the section "emu_shared" as a local
# static named after its function, so the symbol table gives each kernel's
# total. (The nvcc build enforces the same limit in ptxas.)
# Usage: static_shared.sh <object, archive or executable>...
set -eu
limit=49152
objdump -t -C "$@" | awk -v limit="$limit" '
  function hex(s,   v, i) {
    v = 0
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v
  }
  $3 == "O" && $4 == "emu_shared" {
    size = hex($5)
    name = $0
    sub(/^[^ ]+ +[^ ]+ +O +emu_shared[ \t]+[0-9a-f]+ +/, "", name)
    fn = name
    sub(/::[^:]*$/, "", fn)
    if (size > 0) total[fn] += size
  }
  END {
    bad = 0
    for (fn in total) {
      printf "%6d bytes  %s\n", total[fn], fn
      if (total[fn] > limit) { printf "FAIL: %s declares %d bytes of static shared memory (limit %d)\n", fn, total[fn], limit; bad = 1 }
    }
    if (length(total) == 0) { print "FAIL: no static shared memory found: is the section missing?"; bad = 1 }
    exit bad
  }'
