"""Benchmark: Approach 3 on Epoch's 240 Chinchilla points (Hoffmann's 4,500-start grid, then 1,000 bootstrap
replicates re-converged from the optimum), plus every other method on the example data. Prints seconds.

    python benchmarks/bench_fit.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from scaling_planner.fitting import fit_method
from scaling_planner.io.runlog import load_runs

ROOT = Path(__file__).resolve().parent.parent


def timed(label, fn, repeat=3):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    print(f"{label:<58} best {min(times):6.2f} s   median {np.median(times):6.2f} s")
    return out


def main():
    t = load_runs(ROOT / "examples" / "epoch_chinchilla" / "chinchilla_points.csv")
    t = t.subset(np.sort(np.argsort(t.loss, kind="stable")[:-5]))
    r = timed("approach3: 4,500-start grid, 240 points", lambda: fit_method("approach3", t, bootstrap=0))
    print(f"    objective {r.objective:.10f}, {r.info['n_starts_at_best']} starts at best")
    r = timed("approach3: grid + 1,000 bootstrap replicates", lambda: fit_method("approach3", t, bootstrap=1000))
    print(f"    {r.info['bootstrap']['converged']} of 1000 replicates converged")
    iso = load_runs(ROOT / "examples" / "chinchilla_isoflops" / "isoflops.csv")
    timed("approach2: 85 IsoFLOP points + 1,000 replicates", lambda: fit_method("approach2", iso, bootstrap=1000))
    curves = load_runs(ROOT / "examples" / "misfitting_li2025" / "learning_curves.csv",
                       {"run": "model+peak_lr+total_steps"})
    timed("approach1: 4,852 checkpoints, 240 runs + 1,000 replicates",
          lambda: fit_method("approach1", curves, bootstrap=1000), repeat=1)
    timed("kaplan_ND: 240 points + 1,000 replicates", lambda: fit_method("kaplan_ND", t, bootstrap=1000), repeat=1)


if __name__ == "__main__":
    main()
