#!/bin/sh
# launch/gpu_bundle.sh's tarball runs on a machine without our Debian
# packages. The clean room is a chroot holding only glibc and the loader,
# /bin/sh (dash), /etc/passwd, group and hosts, and /dev, /proc, /sys, /tmp
# bound in a private mount namespace (unshare -m as root, else
# --mount --map-root-user): no Open MPI, PMIx, HDF5, OpenBLAS, jansson, jpeg,
# png, gomp, gfortran, libstdc++, CUDA or NCCL but the bundle's (and, off the
# loader's path, the toolkit's NCCL playing the machine's for one check). In
# it, with env -i: the loader lists the unwrapped binary's libraries as not
# found; through the wrappers every library and Open MPI / PMIx component
# resolves, NCCL is the machine's if it has one, else the bundle's, ctrain
# --version, prepare and a 20-step CPU train run, the same on 2 ranks under
# the bundle's mpirun, and mpirun's error help text comes from its help files.
#   GPU_BUNDLE_CUDA=none  pack without the CUDA libraries (faster) and give the
#                         room the toolkit's, as on a machine that has it
# usage: gpu_bundle.sh CTRAIN SOURCE_DIR
set -eu
ctrain=$1 src=$2
room_libs="ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmvec.so.1 libdl.so.2 libpthread.so.0
  librt.so.1 libutil.so.1 libresolv.so.2 libanl.so.1 libnsl.so.1 libnss_files.so.2 libnss_dns.so.2"
B=/opt/ctrain-gpu

# --- inside the mount namespace: bind the kernel's trees, run the checks ----
if [ "${GPU_BUNDLE_INNER:-}" = 1 ]; then
  room=$GPU_BUNDLE_ROOM logs=$GPU_BUNDLE_LOGS chroot_bin=$GPU_BUNDLE_CHROOT
  # shellcheck disable=SC1091
  . "$src/tests/integration/mpi_env.sh"
  mount --make-rprivate /
  for d in dev proc sys; do mount --rbind "/$d" "$room/$d"; done
  for bind in $GPU_BUNDLE_BINDS; do mount --bind -o ro "${bind%%:*}" "$room${bind#*:}"; done
  fail=0
  # room_run NAME CMD...: CMD in the room with an empty environment; its
  # output in $logs/NAME.txt, printed if it fails.
  room_run() {
    log=$logs/$1.txt
    shift
    if ! env -i PATH=/usr/bin:/bin HOME=/tmp OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
      ${GPU_BUNDLE_LDPATH:+LD_LIBRARY_PATH=$GPU_BUNDLE_LDPATH} "$chroot_bin" "$room" "$@" >"$log" 2>&1; then
      echo "FAIL: in the room: $*"
      cat "$log"
      fail=1
    fi
  }
  # check WHAT CMD...: CMD (outside the room) must succeed.
  check() {
    what=$1
    shift
    if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
  }
  # Clean: ldd (the loader with LD_TRACE_LOADED_OBJECTS, what Debian's ldd
  # script runs; the room has no bash for the script itself) finds none of
  # the packages' libraries for the unwrapped binary.
  env -i PATH=/usr/bin:/bin "$chroot_bin" "$room" /bin/sh -c \
    "LD_TRACE_LOADED_OBJECTS=1 exec /lib64/ld-linux-x86-64.so.2 $B/libexec/ctrain" >"$logs/ldd_bare.txt" 2>&1 || true
  for lib in libmpi.so libhdf5_openmpi.so libopenblas.so libjansson.so libjpeg.so libpng16.so libgomp.so; do
    if ! grep -q "$lib.* => not found" "$logs/ldd_bare.txt"; then
      echo "FAIL: the room is not clean: $lib is not 'not found' for the unwrapped ctrain:"
      cat "$logs/ldd_bare.txt"
      exit 1
    fi
  done
  echo "ok: the room is clean: without the wrapper ctrain's libraries are not found:" \
    "$(awk '/not found/ {printf "%s ", $1}' "$logs/ldd_bare.txt")"
  # Through the bundle's environment everything resolves: binaries, libraries, components.
  room_run ldd_bundle /bin/sh -c "bundle=$B; . $B/libexec/env.sh
    for f in $B/libexec/* $B/lib/*.so* $B/lib/*/*.so*; do
      case \$f in */env.sh | */no-ssh) continue ;; esac
      echo \"== \$f\"; LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2 \"\$f\" || echo \"\$f: FAILED\"
    done"
  check "with env.sh every bundled binary, library and component resolves" \
    sh -c "! grep -E 'not found|FAILED' '$logs/ldd_bundle.txt'"
  # NCCL: the machine's when the loader finds one, else the bundle's lib/nccl.
  if [ -n "$GPU_BUNDLE_NCCL" ]; then
    nccl_of() { sed -n "\|^== $B/libexec/ctrain\$|,/^==/s|.*libnccl.so.2 => \([^ ]*\).*|\1|p" "$1"; }
    [ -e "$room$B/lib/nccl/libnccl.so.2" ] && check "without a NCCL of the machine's, the bundle's: $(nccl_of "$logs/ldd_bundle.txt")" \
      test "$(nccl_of "$logs/ldd_bundle.txt")" = "$B/lib/nccl/libnccl.so.2"
    room_run ldd_nccl /bin/sh -c "LD_LIBRARY_PATH=\${LD_LIBRARY_PATH:+\$LD_LIBRARY_PATH:}/usr/local/nccl/lib
      bundle=$B; . $B/libexec/env.sh; echo '== $B/libexec/ctrain'
      LD_TRACE_LOADED_OBJECTS=1 exec /lib64/ld-linux-x86-64.so.2 $B/libexec/ctrain"
    check "with a NCCL of the machine's on LD_LIBRARY_PATH, that one: $(nccl_of "$logs/ldd_nccl.txt")" \
      test "$(nccl_of "$logs/ldd_nccl.txt")" = /usr/local/nccl/lib/libnccl.so.2
  fi
  room_run version "$B/bin/ctrain" --version
  check "$(head -n 1 "$logs/version.txt")" grep -q '^ctrain ' "$logs/version.txt"
  room_run prepare "$B/bin/ctrain" prepare synthetic /tmp/d.h5 --train 256 --test 64 --seed 3
  check "prepare synthetic" test -s "$room/tmp/d.h5"
  train="$B/bin/ctrain train $B/configs/attn_cnn.ini --set data.path=/tmp/d.h5 --set train.max_steps=20
    --set train.batch_size=32 --set data.val_size=32 --set run.device=cpu --set run.threads=1"
  # shellcheck disable=SC2086 # $train is words
  room_run train1 $train --set run.dir=/tmp/r1
  check "20 steps on 1 rank: $(grep '^timing:' "$logs/train1.txt")" \
    test -f "$room/tmp/r1/checkpoints/step_00000020.h5"
  # shellcheck disable=SC2046,SC2086 # mpi_args and $train are words
  room_run train2 "$B/bin/mpirun" $(mpi_args) -np 2 $train --set run.dir=/tmp/r2
  check "20 steps on 2 ranks under the bundle's mpirun: $(grep '^timing:' "$logs/train2.txt")" \
    sh -c "grep -q ' 2 ranks' '$logs/train2.txt' && test -f '$room/tmp/r2/checkpoints/step_00000020.h5'"
  # With CUDA: the bundle's (or machine's) runtime loads and, with no driver
  # in the room, says so; auto falls back to the CPU.
  if [ -n "$GPU_BUNDLE_NCCL" ]; then
    # shellcheck disable=SC2086 # $train is words
    room_run auto $train --set run.dir=/tmp/r3 --set train.max_steps=2 --set run.device=auto
    check "$(head -n 1 "$logs/auto.txt")" grep -q '^device: cpu (auto: cuda' "$logs/auto.txt"
  fi
  # Help text from share/openmpi, not "Sorry! You were supposed to get help about".
  # shellcheck disable=SC2046
  env -i PATH=/usr/bin:/bin HOME=/tmp "$chroot_bin" "$room" "$B/bin/mpirun" $(mpi_args) -np 1 /no/such/binary \
    >"$logs/help.txt" 2>&1 || true
  check "mpirun's help text comes from the bundle" \
    sh -c "grep -q 'could not access' '$logs/help.txt' && ! grep -q 'supposed to get help' '$logs/help.txt'" ||
    cat "$logs/help.txt"
  check "Open MPI and PMIx print no warnings" \
    sh -c "! grep 'component was not found\|unable to be opened\|supposed to get help\|^WARNING' '$logs'/train*.txt"
  exit "$fail"
fi

# --- outside: make the bundle and the room -----------------------------------
skip() {
  echo "skipped: $*"
  exit 77
}
chroot_bin=$(command -v chroot 2>/dev/null || echo /usr/sbin/chroot)
[ -x "$chroot_bin" ] || skip "no chroot"
command -v unshare >/dev/null 2>&1 || skip "no unshare"
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
  ns="unshare -m"
elif unshare --mount --map-root-user true 2>/dev/null; then
  ns="unshare --mount --map-root-user"
else
  skip "no private mount namespace (unshare -m and --map-root-user refused)"
fi
$ns sh -c "mkdir -p /tmp && $chroot_bin / true" 2>/dev/null || skip "chroot refused in the namespace"
tmp=$(mktemp -d)
# The binds live in the namespace only; never delete through a mount.
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  if grep -qF " $tmp/" /proc/self/mountinfo; then
    echo "gpu_bundle.sh: mounts left under $tmp; not removing it" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
# shellcheck disable=SC1091
. "$src/tests/integration/expect.sh"
fail=0

# A clear one-line error without a build.
mkdir "$tmp/nobuild"
set +e
expect 1 "ctrain not found" -- "$src/launch/gpu_bundle.sh" "$tmp/nobuild" "$tmp/x.tar.gz"
set -e

mode=${GPU_BUNDLE_CUDA:-toolkit}
start=$(date +%s)
CTRAIN_BUNDLE_CUDA=$mode CTRAIN_BUNDLE_GZIP=1 "$src/launch/gpu_bundle.sh" "$(dirname "$ctrain")" "$tmp/b.tar.gz"
echo "ok: bundle packed in $(($(date +%s) - start)) s"

room=$tmp/room
mkdir -p "$room/usr/lib/x86_64-linux-gnu" "$room/usr/bin" "$room/lib64" "$room/opt" "$room/etc" \
  "$room/dev" "$room/proc" "$room/sys" "$room/tmp" "$tmp/logs"
chmod 1777 "$room/tmp"
ln -s usr/lib "$room/lib"
ln -s usr/bin "$room/bin"
libc=$(ldd /bin/true | awk '$1 == "libc.so.6" {print $3}')
[ -f "$libc" ] || skip "cannot find glibc (ldd /bin/true)"
for n in $room_libs; do
  [ -e "$(dirname "$libc")/$n" ] && cp -L "$(dirname "$libc")/$n" "$room/usr/lib/x86_64-linux-gnu/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$room/lib64/"
sh_bin=$(command -v dash 2>/dev/null || readlink -f /bin/sh)
for so in $(ldd "$sh_bin" | awk '$2 == "=>" {print $1}'); do
  case " $(echo "$room_libs" | tr -s ' \n' '  ') " in
    *" $so "*) ;;
    *) skip "$sh_bin needs $so, not glibc: no shell for the room" ;;
  esac
done
cp -L "$sh_bin" "$room/usr/bin/sh"
for f in passwd group hosts; do
  if [ -f "/etc/$f" ]; then cp "/etc/$f" "$room/etc/"; fi
done
grep -q '^root:' "$room/etc/passwd" 2>/dev/null || echo 'root:x:0:0:root:/tmp:/bin/sh' >>"$room/etc/passwd"
start=$(date +%s)
tar -xzf "$tmp/b.tar.gz" -C "$room/opt"
echo "ok: unpacked in $(($(date +%s) - start)) s: $(du -sh "$room/opt/ctrain-gpu" | cut -f1)"

# The machine's NCCL, as a pip-installed nvidia-nccl has it (the toolkit's,
# bound read-only in the namespace, not copied); used by the NCCL check, and
# with CUDA libraries left out of the bundle, by every run, with the
# toolkit's runtime and cuBLAS in /usr/local/cuda/lib64.
binds="" ldpath="" nccl=""
for f in $(ldd "$ctrain" | awk '$1 ~ /^lib(cudart|cublas|cublasLt|nccl)\.so/ {print $3}'); do
  case $f in
    */libnccl.so*) nccl=$f dest=/usr/local/nccl/lib ;;
    *) [ "$mode" = none ] || continue; dest=/usr/local/cuda/lib64 ;;
  esac
  mkdir -p "$room$dest"
  : >"$room$dest/${f##*/}"
  binds="$binds $f:$dest/${f##*/}"
done
[ "$mode" = none ] && ldpath=/usr/local/cuda/lib64:/usr/local/nccl/lib

start=$(date +%s)
GPU_BUNDLE_INNER=1 GPU_BUNDLE_ROOM=$room GPU_BUNDLE_LOGS=$tmp/logs GPU_BUNDLE_CHROOT=$chroot_bin \
  GPU_BUNDLE_BINDS=$binds GPU_BUNDLE_LDPATH=$ldpath GPU_BUNDLE_NCCL=$nccl $ns sh "$0" "$ctrain" "$src" || fail=1
echo "room checks: $(($(date +%s) - start)) s"
[ "$fail" -eq 0 ] && echo "ok: the bundle runs in a room without the Debian packages"
exit "$fail"
