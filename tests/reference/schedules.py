#!/usr/bin/python3
"""schedules.py PATH/TO/schedule_dump -- compare ctrain's lr/beta1 schedules with torch.

schedule_dump KIND TOTAL_STEPS key=value ... prints `t lr beta1` (%.9g) for
t = 0..TOTAL_STEPS-1. Each case runs the same schedule in torch on Adam
(betas (beta1, 0.999)) over a dummy parameter, reading param_groups[0]['lr']
and ['betas'][0] before step t. Both sides compute in double and ctrain prints
9 significant digits (5e-10 relative), so |a-b| <= 1e-6 |b| (+1e-15) leaves room
only for genuine formula differences. Exit 1 on a mismatch, naming the first
differing step of each failing case.
"""
import subprocess
import sys

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, OneCycleLR

RTOL, ATOL = 1e-6, 1e-15
# (label, kind, total steps, keys passed to schedule_dump). Keys left out must
# take torch's defaults: OneCycle pct_start 0.3, div 25, final_div 1e4, anneal
# cos, momentum 0.85..0.95 cycled; cosine eta_min 0.
CASES = [
    ("cosine T=100", "cosine", 100, dict(lr=1e-3, beta1=0.9)),
    ("cosine T=100 eta_min", "cosine", 100, dict(lr=0.1, eta_min=1e-4, beta1=0.9)),
    ("onecycle defaults T=200", "onecycle", 200, dict(max_lr=0.01)),
    ("onecycle ultimus T=24*97", "onecycle", 24 * 97, dict(
        max_lr=0.02477, pct_start=5 / 24, div_factor=10, final_div_factor=10, anneal="linear")),
    ("onecycle T=10", "onecycle", 10, dict(max_lr=0.01)),
    ("onecycle no momentum T=10", "onecycle", 10, dict(max_lr=0.01, cycle_momentum=0, beta1=0.9)),
    ("onecycle momenta T=10", "onecycle", 10, dict(
        max_lr=0.1, base_momentum=0.8, max_momentum=0.99, pct_start=0.25, anneal="cos")),
    ("constant T=10", "constant", 10, dict(lr=3e-4, beta1=0.85)),
]


def torch_schedule(kind, total, kw):
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=kw.get("lr", 1e-3),
                           betas=(kw.get("beta1", 0.9), 0.999))
    if kind == "cosine":
        sched = CosineAnnealingLR(opt, T_max=total, eta_min=kw.get("eta_min", 0.0))
    elif kind == "onecycle":
        sched = OneCycleLR(opt, max_lr=kw["max_lr"], total_steps=total, pct_start=kw.get("pct_start", 0.3),
                           anneal_strategy=kw.get("anneal", "cos"), cycle_momentum=bool(kw.get("cycle_momentum", 1)),
                           base_momentum=kw.get("base_momentum", 0.85), max_momentum=kw.get("max_momentum", 0.95),
                           div_factor=kw.get("div_factor", 25.0), final_div_factor=kw.get("final_div_factor", 1e4))
    else:
        sched = LambdaLR(opt, lambda t: 1.0)
    rows = []
    for t in range(total):
        g = opt.param_groups[0]
        rows.append((g["lr"], g["betas"][0]))
        if t + 1 < total:
            opt.step()
            sched.step()
    return rows


def ctrain_schedule(tool, kind, total, kw):
    cmd = [tool, kind, str(total)] + [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items()]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()}")
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    if [int(r[0]) for r in rows] != list(range(total)):
        raise RuntimeError(f"{' '.join(cmd)}: expected lines t = 0..{total - 1}, got {len(rows)} lines")
    return [(float(r[1]), float(r[2])) for r in rows]


def main(tool):
    failed = 0
    for label, kind, total, kw in CASES:
        try:
            got = ctrain_schedule(tool, kind, total, kw)
        except RuntimeError as e:
            print(f"FAIL {label}: {e}")
            failed += 1
            continue
        want = torch_schedule(kind, total, kw)
        bad = next(((t, i) for t, (a, b) in enumerate(zip(got, want)) for i in (0, 1)
                    if abs(a[i] - b[i]) > RTOL * abs(b[i]) + ATOL), None)
        if bad is None:
            print(f"ok   {label}: {total} steps, lr {want[0][0]:.4g} .. {max(w[0] for w in want):.4g} .. "
                  f"{want[-1][0]:.4g}, beta1 {want[0][1]:.4g} .. {min(w[1] for w in want):.4g} .. {want[-1][1]:.4g}")
        else:
            t, i = bad
            what = ("lr", "beta1")[i]
            print(f"FAIL {label}: first difference at step {t}: {what} ctrain {got[t][i]:.9g} vs torch "
                  f"{want[t][i]:.9g} (rel {abs(got[t][i] - want[t][i]) / abs(want[t][i]):.2e})")
            failed += 1
    print("schedules: " + ("PASS" if not failed else f"FAIL ({failed} of {len(CASES)} cases)"))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
