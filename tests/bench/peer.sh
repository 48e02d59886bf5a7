#!/bin/sh
# The PyTorch peer for tests/bench/run_peer.sh: the newest torch and numpy
# from PyPI in a venv of their own, so the comparison is against current
# PyTorch rather than the distribution's 1.13 that tests/reference uses.
# The default wheel pulls the CUDA libraries (~3 GB), which torch needs just
# to import even on a CPU-only machine. Run by hand only, never by CI: it
# downloads gigabytes. Idempotent: an existing venv with torch is reused
# (pass CTRAIN_PEER_UPGRADE=1 to fetch a newer release into it).
# usage: tests/bench/peer.sh [VENV]   (default ${CTRAIN_PEER_VENV:-$HOME/.cache/ctrain/torch-peer})
set -eu
venv=${1:-${CTRAIN_PEER_VENV:-$HOME/.cache/ctrain/torch-peer}}
py=${CTRAIN_PEER_PYTHON:-python3}
die() { echo "peer.sh: $*" >&2; exit 1; }

command -v "$py" >/dev/null 2>&1 || die "no $py on PATH (set CTRAIN_PEER_PYTHON)"
mkdir -p "$(dirname "$venv")" || die "cannot create $(dirname "$venv")"
log="$(dirname "$venv")/$(basename "$venv").install.log"

# A venv whose python runs is kept; a broken one (interpreter moved) is rebuilt.
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
  rm -rf "$venv"
  # Debian's /usr/bin/python3 lacks ensurepip without python3-venv; say so
  # in one line instead of venv's multi-line advice.
  "$py" -m venv "$venv" >"$log" 2>&1 ||
    die "'$py -m venv $venv' failed (no venv/ensurepip module?), see $log"
fi

if [ "${CTRAIN_PEER_UPGRADE:-0}" = 1 ] || ! "$venv/bin/python" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "peer.sh: installing the newest torch and numpy from PyPI into $venv (~3 GB), log in $log" >&2
  # pip's own output goes to the log: on failure its last line is the reason.
  { "$venv/bin/python" -m pip install --upgrade pip &&
    "$venv/bin/python" -m pip install --upgrade torch numpy; } >>"$log" 2>&1 ||
    die "pip install torch numpy failed: $(tail -n 1 "$log")"
fi

"$venv/bin/python" -c 'import torch; print("torch", torch.__version__)' 2>>"$log" ||
  die "torch does not import in $venv, see $log"
