#!/bin/sh
# Packs ctrain for a bare GPU machine (the NVIDIA driver, nothing of ours):
# the built binaries, every shared library they need except glibc and the
# driver, Open MPI's mpirun with its components and help files, PMIx's
# plugins, wrappers that point the loader and Open MPI at all of it, the
# configs and a README.
#   launch/gpu_bundle.sh [BUILD_DIR] [OUT.tar.gz]
# defaults build/ and BUILD_DIR/ctrain-gpu-bundle.tar.gz. Environment:
#   CTRAIN_BUNDLE_CUDA=none     (default) the CUDA runtime, cuBLAS and NCCL stay
#                               out: a GPU machine has the driver and the CUDA
#                               runtime (25 MB with CUDA 13)
#                     =toolkit  the toolkit's runtime, cuBLAS and NCCL go in too,
#                               for a machine with the driver alone (616 MB,
#                               most of it cuBLASLt)
#   CTRAIN_BUNDLE_GZIP=6        gzip level (1 is 2x faster, 15 % bigger)
set -eu
me=launch/gpu_bundle.sh
die() {
  echo "$me: $*" >&2
  exit 1
}
# Arguments are relative to the caller's directory; defaults to the checkout.
here=$(pwd -P)
root=$(cd "$(dirname "$0")/.." && pwd -P)
abspath() { case $1 in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
build=$(abspath "${1:-$root/build}")
out=$(abspath "${2:-$build/ctrain-gpu-bundle.tar.gz}")
cuda_mode=${CTRAIN_BUNDLE_CUDA:-none}
level=${CTRAIN_BUNDLE_GZIP:-6}
case $cuda_mode in toolkit | none) ;; *) die "CTRAIN_BUNDLE_CUDA is '$cuda_mode', want toolkit or none" ;; esac
case $level in [1-9]) ;; *) die "CTRAIN_BUNDLE_GZIP is '$level', want 1..9" ;; esac
for tool in ldd strip tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH"
done
[ -x "$build/ctrain" ] || die "$build/ctrain not found (build first: launch/build.sh)"
mpirun_path=$(command -v mpirun 2>/dev/null) || die "needs Open MPI's mpirun on PATH (Debian: openmpi-bin)"
mpirun_real=$(readlink -f "$mpirun_path")
mpibin=$(dirname "$mpirun_real")

stage=$(mktemp -d)
trap 'rm -rf "$stage" "$out.part"' EXIT
name=ctrain-gpu
B=$stage/$name
mkdir -p "$B/bin" "$B/libexec" "$B/lib" "$B/etc" "$B/share" "$B/configs"

# --- the binaries ----------------------------------------------------------------
# ctrain, bench_step and every executable named *_gpu (CTRAIN_GPU_TESTS=ON).
bins=$build/ctrain
for f in $(find "$build" -path '*/CMakeFiles' -prune -o -type f \( -name bench_step -o -name '*_gpu' \) -perm -u+x -print | sort); do
  [ "$(head -c 4 "$f" | tail -c 3)" = ELF ] && bins="$bins $f"
done
mpi_progs=""
for p in "$mpirun_real" "$mpibin/orted" "$mpibin/prted" "$mpibin/prte"; do
  [ -x "$p" ] && mpi_progs="$mpi_progs $p"
done
for f in $bins $mpi_progs; do
  cp "$f" "$B/libexec/"
  strip --strip-unneeded "$B/libexec/$(basename "$f")"
done

# --- Open MPI's and PMIx's plugins -------------------------------------------------
# Where Debian's Open MPI keeps its components, help files and settings.
ompi_path() { ompi_info --path "$1" --parsable 2>/dev/null | sed -n "s/^path:$1://p"; }
if command -v ompi_info >/dev/null 2>&1; then
  pkglibdir=$(ompi_path pkglibdir) pkgdatadir=$(ompi_path pkgdatadir) sysconfdir=$(ompi_path sysconfdir)
else
  pkglibdir=$(find /usr/lib/x86_64-linux-gnu/openmpi/lib -maxdepth 1 -name 'openmpi*' -type d 2>/dev/null | head -n 1)
  pkgdatadir=/usr/share/openmpi sysconfdir=/etc/openmpi
fi
[ -d "$pkglibdir" ] || die "Open MPI's component directory not found (ompi_info --path pkglibdir: '$pkglibdir')"
[ -d "$pkgdatadir" ] || die "Open MPI's help files not found ('$pkgdatadir'; Debian: openmpi-common)"
ompi_comp=$(basename "$pkglibdir")
# Components that need the fabric stacks of big clusters (UCX, libfabric,
# verbs, PSM) stay out: they drag in 30 MB, Open MPI warns when one cannot be
# opened, and ctrain's GPU traffic goes over NCCL, which brings its own.
heavy='libucp|libucs|libuct|libucm|libfabric|libibverbs|librdmacm|libefa|libpsm|libinfinipath'
mkdir -p "$B/lib/$ompi_comp"
dropped=""
# OpenSHMEM's frameworks (and liboshmem) serve SHMEM programs only.
for f in "$pkglibdir"/*.so; do
  case ${f##*/} in
    mca_atomic_* | mca_memheap_* | mca_scoll_* | mca_spml_* | mca_sshmem_*) continue ;;
  esac
  if ldd "$f" | grep -qE "^[[:space:]]*($heavy)"; then
    dropped="$dropped $(basename "$f" .so)"
  else
    cp -L "$f" "$B/lib/$ompi_comp/"
  fi
done
cp -r "$pkgdatadir" "$B/share/openmpi"
if [ -d "$sysconfdir" ]; then cp -L "$sysconfdir"/* "$B/etc/"; fi
# PMIx (Open MPI 4 with an external PMIx: Debian's pmix2 tree).
pmixlib=$(ldd "$B/lib/$ompi_comp"/*.so "$B/libexec"/* 2>/dev/null | awk '$1 ~ /^libpmix\.so/ && $3 ~ /^\// {print $3; exit}')
if [ -n "$pmixlib" ]; then
  pmixroot=$(dirname "$(dirname "$(readlink -f "$pmixlib")")")
  [ -d "$pmixroot/lib/pmix" ] && cp -r "$pmixroot/lib/pmix" "$B/lib/pmix"
  [ -d "$pmixroot/share/pmix" ] && cp -r "$pmixroot/share/pmix" "$B/share/pmix"
  # Debian's pmix-mca-params.conf names its absolute component path; the
  # wrappers set it through PMIX_MCA_mca_base_component_path instead.
  echo "# ctrain bundle: component and help paths come from libexec/env.sh" >"$B/etc/pmix-mca-params.conf"
fi
mkdir -p "$B/lib/pmix"

# --- the shared libraries ldd finds --------------------------------------------------
# glibc and the loader must be the machine's (they go with its kernel), and so
# must the NVIDIA driver. The CUDA toolkit's libraries go in lib/cuda, NCCL in
# lib/nccl (the wrappers look for the machine's NCCL first).
is_glibc() {
  case $1 in
    ld-linux* | linux-vdso* | libc.so.* | libm.so.* | libmvec.so.* | libdl.so.* | libpthread.so.* | \
      librt.so.* | libutil.so.* | libresolv.so.* | libnsl.so.* | libanl.so.* | libnss_* | \
      libBrokenLocale.so.* | libthread_db.so.* | libc_malloc_debug.so.*) return 0 ;;
  esac
  return 1
}
is_driver() { case $1 in libcuda.so* | libnvidia-* | libnvcuvid.so* | libnvoptix.so*) return 0 ;; esac; return 1; }
is_cuda() {
  case $1 in libcudart.so* | libcublas.so* | libcublasLt.so* | libnvJitLink.so* | libnvrtc* | \
    libcusparse.so* | libcusolver.so* | libcufft.so* | libcurand.so* | libcudnn*) return 0 ;; esac
  return 1
}
mkdir -p "$B/lib/cuda" "$B/lib/nccl"
ldd_all=$stage/ldd.txt
for f in "$B"/libexec/* "$B/lib/$ompi_comp"/*.so "$B"/lib/pmix/*.so; do
  [ -f "$f" ] || continue
  ldd "$f" | sed "s|^|$(basename "$f"): |"
done >"$ldd_all" 2>&1 || true
# The driver may be missing here (a build machine without a GPU): it is the target's.
missing=$(awk '/=> not found/ && $2 !~ /^(libcuda\.so|libnvidia-)/ {sub(/:$/, "", $1); print $2 " (needed by " $1 ")"}' \
  "$ldd_all" | sort -u | paste -sd ' ')
[ -z "$missing" ] || die "ldd cannot find $missing"
skipped_cuda=""
awk '$3 == "=>" && $4 ~ /^\// {print $2, $4}' "$ldd_all" | sort -u | while read -r so path; do
  if is_glibc "$so" || is_driver "$so"; then continue; fi
  dest=$B/lib
  case $so in libnccl.so*) dest=$B/lib/nccl ;; esac
  is_cuda "$so" && dest=$B/lib/cuda
  if [ "$cuda_mode" = none ] && [ "$dest" != "$B/lib" ]; then continue; fi
  [ -e "$dest/$so" ] || cp -L "$path" "$dest/$so"
done
[ "$cuda_mode" = none ] && skipped_cuda=$(awk '$3 == "=>" {print $2}' "$ldd_all" | sort -u |
  grep -E '^(libcudart|libcublas|libnccl)' | tr '\n' ' ' || true)

# --- wrappers ------------------------------------------------------------------------
cat >"$B/libexec/env.sh" <<'EOF'
# shellcheck shell=sh disable=SC2154 # $bundle is the caller's
# Sourced by the bundle's bin/* wrappers with $bundle set: points the loader,
# Open MPI and PMIx at the bundle. Also usable by hand:
#   bundle=/path/to/ctrain-gpu; . "$bundle/libexec/env.sh"
# NCCL: the machine's libnccl.so.2 wins when the loader finds one (caller's
# LD_LIBRARY_PATH, or ldconfig's cache); otherwise lib/nccl, last on the path.
# CTRAIN_NCCL=bundle always takes the bundle's, =system never does.
if [ "${CTRAIN_BUNDLE:-}" != "$bundle" ]; then # not again under bin/mpirun
  lp=$bundle/lib:$bundle/lib/cuda
  [ "${CTRAIN_NCCL:-auto}" = bundle ] && lp=$lp:$bundle/lib/nccl
  [ -n "${LD_LIBRARY_PATH:-}" ] && lp=$lp:$LD_LIBRARY_PATH
  if [ "${CTRAIN_NCCL:-auto}" = auto ] && [ -e "$bundle/lib/nccl/libnccl.so.2" ]; then
    have=""
    for ldc in /sbin/ldconfig /usr/sbin/ldconfig; do
      if [ -x "$ldc" ]; then
        case $("$ldc" -p 2>/dev/null) in *"libnccl.so.2 "*) have=1 ;; esac
      fi
    done
    [ -n "$have" ] || lp=$lp:$bundle/lib/nccl
  fi
  CTRAIN_BUNDLE=$bundle
  LD_LIBRARY_PATH=$lp
  # Debian's Open MPI is configured with absolute paths; each is relocated
  # (OPAL_PREFIX alone would give $bundle/lib/x86_64-linux-gnu/openmpi/...).
  OPAL_PREFIX=$bundle
  OPAL_EXEC_PREFIX=$bundle
  OPAL_BINDIR=$bundle/bin
  OPAL_LIBDIR=$bundle/lib
  OPAL_PKGLIBDIR=$bundle/lib/@OMPI_COMP@
  OPAL_DATAROOTDIR=$bundle/share
  OPAL_DATADIR=$bundle/share
  OPAL_PKGDATADIR=$bundle/share/openmpi
  OPAL_SYSCONFDIR=$bundle/etc
  OMPI_MCA_mca_base_component_path=$bundle/lib/@OMPI_COMP@
  # Remote nodes start bin/orted (the bundle at the same path on every node).
  OMPI_MCA_orte_launch_agent=$bundle/bin/orted
  PMIX_PREFIX=$bundle
  PMIX_LIBDIR=$bundle/lib
  PMIX_PKGLIBDIR=$bundle/lib/pmix
  PMIX_DATAROOTDIR=$bundle/share
  PMIX_DATADIR=$bundle/share
  PMIX_PKGDATADIR=$bundle/share/pmix
  PMIX_SYSCONFDIR=$bundle/etc
  PMIX_MCA_mca_base_component_path=$bundle/lib/pmix
  PATH=$bundle/bin:${PATH:-/usr/bin:/bin}
  # Open MPI wants an ssh to start even on one node (containers often have none).
  if [ -z "${OMPI_MCA_plm_rsh_agent:-}" ] && ! command -v ssh >/dev/null 2>&1 &&
    ! command -v rsh >/dev/null 2>&1; then
    OMPI_MCA_plm_rsh_agent=$bundle/libexec/no-ssh
    export OMPI_MCA_plm_rsh_agent
  fi
  export CTRAIN_BUNDLE LD_LIBRARY_PATH OPAL_PREFIX OPAL_EXEC_PREFIX OPAL_BINDIR OPAL_LIBDIR \
    OPAL_PKGLIBDIR OPAL_DATAROOTDIR OPAL_DATADIR OPAL_PKGDATADIR OPAL_SYSCONFDIR \
    OMPI_MCA_mca_base_component_path OMPI_MCA_orte_launch_agent PMIX_PREFIX PMIX_LIBDIR \
    PMIX_PKGLIBDIR PMIX_DATAROOTDIR PMIX_DATADIR PMIX_PKGDATADIR PMIX_SYSCONFDIR \
    PMIX_MCA_mca_base_component_path PATH
  unset lp have ldc
fi
EOF
sed -i "s|@OMPI_COMP@|$ompi_comp|g" "$B/libexec/env.sh"
cat >"$B/libexec/no-ssh" <<'EOF'
#!/bin/sh
echo "ctrain bundle: no ssh on this machine: Open MPI cannot start ranks on other nodes ($*)" >&2
exit 1
EOF
chmod 755 "$B/libexec/no-ssh"
# bin/NAME runs libexec/NAME; shell builtins only (no dirname on a bare root).
wrap() {
  cat >"$B/bin/$1" <<EOF
#!/bin/sh
# ctrain GPU bundle: runs libexec/$2 with the bundle's libraries and Open MPI.
set -eu
self=\$0
while [ -L "\$self" ]; do # a symlink to this wrapper (readlink only then)
  link=\$(readlink "\$self")
  case \$link in /*) self=\$link ;; *) self=\${self%/*}/\$link ;; esac
done
case \$self in */*) dir=\${self%/*} ;; *) dir=. ;; esac
bundle=\$(cd -P -- "\$dir/.." && pwd -P)
# shellcheck disable=SC1091
. "\$bundle/libexec/env.sh"
exec "\$bundle/libexec/$2" "\$@"
EOF
  chmod 755 "$B/bin/$1"
}
for f in $bins $mpi_progs; do
  n=$(basename "$f")
  wrap "$n" "$n"
done
mpirun_name=$(basename "$mpirun_real")
for n in mpirun mpiexec; do
  [ -e "$B/bin/$n" ] || wrap "$n" "$mpirun_name"
done

# --- configs, README --------------------------------------------------------------
cp "$root"/configs/*.ini "$B/configs/"
version=$("$build/ctrain" --version 2>/dev/null | head -n 1 || echo "ctrain")
cat >"$B/README" <<EOF
$version, packed by launch/gpu_bundle.sh on $(date -u +%Y-%m-%d) for x86-64 Linux
with glibc >= $(ldd --version | head -n 1 | awk '{print $NF}') and, for the GPU, the NVIDIA driver.

Unpack anywhere and run through bin/ (the wrappers set LD_LIBRARY_PATH and
Open MPI's paths to this directory; no installation, no root):
  tar xzf ctrain-gpu-bundle.tar.gz
  ctrain-gpu/bin/ctrain --version
  ctrain-gpu/bin/ctrain prepare synthetic data.h5 --train 10000 --test 2000
  ctrain-gpu/bin/ctrain train ctrain-gpu/configs/attn_cnn.ini \\
      --set data.path=data.h5 --set run.device=cuda --set run.dir=runs/a
  ctrain-gpu/bin/mpirun -np 2 ctrain-gpu/bin/ctrain train ...   (as root add --allow-run-as-root)
Across nodes, unpack to the same path on every node (remote orted is bin/orted).

bin/      wrappers: ctrain, mpirun/mpiexec ($mpirun_name), orted, bench_step, *_gpu tests
libexec/  the real binaries (stripped) and env.sh (source it with bundle=DIR to
          set the same environment by hand)
lib/      Open MPI, PMIx, hwloc, libevent, parallel HDF5, OpenBLAS, gfortran,
          jansson, jpeg, png, gomp, curl and what they need; lib/$ompi_comp and
          lib/pmix: Open MPI's and PMIx's components
lib/cuda  the CUDA toolkit's runtime and cuBLAS (empty if packed without them)
lib/nccl  NCCL, used only when the machine has no libnccl.so.2 of its own
          (LD_LIBRARY_PATH or ldconfig); CTRAIN_NCCL=bundle|system overrides
share/    Open MPI's and PMIx's help files; etc/: Open MPI's settings
configs/  the model configs
Not included: glibc and the loader, the NVIDIA driver (libcuda, libnvidia-*),
Open MPI's UCX, libfabric, verbs and PSM components (MPI runs over shared
memory and TCP; ctrain's GPU traffic is NCCL's), OpenSHMEM, hwloc's plugins.
EOF
[ -z "$dropped" ] || echo "components left out (fabric stacks):$dropped" >>"$B/README"
[ -z "$skipped_cuda" ] || echo "packed with CTRAIN_BUNDLE_CUDA=none; the machine must provide: $skipped_cuda" >>"$B/README"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - "$name" | gzip -"$level" >"$out.part"
mv "$out.part" "$out"
count() { find "$1" -maxdepth 1 -type f -name "$2" | wc -l; }
names() { find "$1" -maxdepth 1 -type f -printf '%f\n' | sort | tr '\n' ' '; }
size=$(du -k "$out" | awk '{printf "%.1f MB", $1 / 1024}')
echo "$me: $out ($size): $(($(count "$B/libexec" '*') - 2)) binaries, $(count "$B/lib" '*.so*') libraries," \
  "$(count "$B/lib/$ompi_comp" '*.so') Open MPI components; lib/cuda: $(names "$B/lib/cuda")lib/nccl: $(names "$B/lib/nccl")"
