"""Two checkpoints hold bitwise the same tensors (a preempted or requeued run
against an uninterrupted one of the same world size). /rng/state is left
out: it records the data loader's position, which a resumed run reaches by
another path; everything it determines is in the parameters.

    python3 same_params.py A.h5 B.h5   (exit 1 on a difference)
"""
import sys

import h5py


def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[()].tobytes()) if isinstance(v, h5py.Dataset) else None)
    return out


if __name__ == "__main__":
    a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
    if a.keys() != b.keys():
        print(f"FAIL: {sys.argv[2]} holds other tensors than {sys.argv[1]}")
        sys.exit(1)
    bad = [k for k in a if not k.startswith("rng/") and a[k] != b[k]]
    if bad:
        print(f"FAIL: {sys.argv[2]} differs from {sys.argv[1]} in {bad[:5]}")
        sys.exit(1)
    print(f"ok: {sys.argv[2]} is bitwise {sys.argv[1]} ({len(a)} tensors)")
