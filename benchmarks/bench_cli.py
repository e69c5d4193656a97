"""Benchmark: the fixed cost of the command line, each command in a new process (wall seconds, best and median of 5):
`scaleplan --help`, `scaleplan fit --help`, `scaleplan fit` on a 10-point file (approach3, no bootstrap: nearly all of
it is start-up), `scaleplan budget` (the README example). Also which heavy libraries each one imported.

    python benchmarks/bench_cli.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = ("import runpy, sys\nsys.argv = ['scaleplan'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('scaling_planner', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'matplotlib', 'pydantic') if m in sys.modules]\n"
         "sys.stderr.write('IMPORTED:' + ','.join(heavy) + '\\n')\n")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "runs.csv"
        small.write_text("N,D,loss\n" + "".join(
            f"{n:g},{d:g},{1.82 + 482 / n**0.3478 + 2085 / d**0.3658:.5f}\n"
            for n in (1e8, 3e8, 1e9, 3e9, 1e10) for d in (2e9, 2e10)))
        cases = [["--help"], ["fit", "--help"],
                 ["fit", str(small), "--method", "approach3", "--bootstrap", "0", "--json"],
                 ["budget", "--flops", "1e23", "--gpu", "a100-80", "--json"]]
        for args in cases:
            times, imported = [], ""
            for _ in range(5):
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
                times.append(time.perf_counter() - t0)
                imported = r.stderr.strip().splitlines()[-1].split(":", 1)[1]
            shown = " ".join(a if "/" not in a else Path(a).name for a in args)
            print(f"scaleplan {shown:<62} best {min(times) * 1000:6.0f} ms  median "
                  f"{statistics.median(times) * 1000:6.0f} ms  imports: {imported or '(none of numpy, pandas, ...)'}",
                  flush=True)


if __name__ == "__main__":
    main()
