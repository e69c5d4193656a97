"""Run every mutation (or those matching the arguments) against its tests; print killed / SURVIVED per mutation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from . import all_mutations

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    muts = [m for m in all_mutations().values() if not argv or any(a in m.name for a in argv)]
    survived = []
    print(f"{'mutation':<44} {'result':<9} {'s':>5}  what is stubbed out")
    for m in muts:
        t0 = time.perf_counter()
        env = {**os.environ, "SCALEPLAN_MUTATION": m.name}
        rc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        result = "killed" if rc == 1 else "SURVIVED" if rc == 0 else f"error {rc}"
        if rc != 1:
            survived.append(m.name)
        print(f"{m.name:<44} {result:<9} {time.perf_counter() - t0:5.1f}  {m.what}", flush=True)
    print(f"\n{len(muts) - len(survived)} of {len(muts)} mutations killed"
          + (f"; not killed: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
