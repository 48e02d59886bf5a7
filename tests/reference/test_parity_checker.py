#!/usr/bin/python3
"""Self-test of parity.py on dumps made by make_fake_dump.py: an unperturbed
dump must PASS, each planted bug must FAIL on the rows it concerns."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {   # perturbation -> (expected exit code, a row that must read FAIL)
    "none": (0, None),
    "grad": (1, "grad   cnn.5.weight"),
    "lr": (1, "final  attn1.W_q.weight"),
    "bn": (1, "final  cnn.6.running_var"),
    "mask": (1, "loss   step 0"),
    "zero_bias": (1, "final  cnn.0.bias"),
}

bad = []
with tempfile.TemporaryDirectory() as tmp:
    for kind, (want_rc, row) in CASES.items():
        dump = os.path.join(tmp, f"{kind}.h5")
        subprocess.run([sys.executable, os.path.join(HERE, "make_fake_dump.py"), dump, "--perturb", kind],
                       check=True, stdout=subprocess.DEVNULL)
        r = subprocess.run([sys.executable, os.path.join(HERE, "parity.py"), dump], capture_output=True, text=True)
        failed_rows = [ln for ln in r.stdout.splitlines() if "FAIL" in ln and not ln.startswith("parity")]
        ok = r.returncode == want_rc and (row is None or any(ln.startswith(row) for ln in failed_rows))
        print(f"{'ok  ' if ok else 'BAD '} perturb {kind:10} exit {r.returncode} (want {want_rc}); "
              f"{len(failed_rows)} failing rows" + (f", e.g. {failed_rows[0].split()[1]}" if failed_rows else ""))
        if not ok:
            bad.append(kind)
            print(r.stdout[-3000:], r.stderr[-2000:])
sys.exit(1 if bad else 0)
