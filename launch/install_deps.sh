#!/bin/sh
# Installs the Debian packages ctrain needs, only those missing.
# usage: launch/install_deps.sh [--tests]   (--tests adds PyTorch and h5py)
set -eu
pkgs="cmake make gcc g++ pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libjpeg-dev libpng-dev zlib1g-dev libjansson-dev"
if [ "${1:-}" = "--tests" ]; then
  pkgs="$pkgs python3 python3-torch python3-h5py python3-numpy"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
