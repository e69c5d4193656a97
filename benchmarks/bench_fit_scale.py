"""Benchmark: Approach 3 as the number of fit points grows (1k, 10k, 100k synthetic points from Epoch's law with 1%
log-normal noise, every point its own run). The cost per point should stay flat. Prints seconds and microseconds per
point.

    python benchmarks/bench_fit_scale.py                 # 1k, 10k, 100k points, no bootstrap; 10k with 100 replicates
    python benchmarks/bench_fit_scale.py 1000 5000       # other sizes
    python benchmarks/bench_fit_scale.py --screen grid 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scaling_planner.fitting import fit_method
from scaling_planner.io.runlog import from_arrays

E, A, B, ALPHA, BETA = 1.82, 482.0, 2085.0, 0.3478, 0.3658  # Besiroglu et al. 2024 (Epoch's fit)


def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = N * np.exp(rng.uniform(np.log(2), np.log(500), n))
    L = (E + A / N**ALPHA + B / D**BETA) * np.exp(rng.normal(0, 0.01, n))
    return from_arrays(N=N, D=D, loss=L, run=np.arange(n).astype(str))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1_000, 10_000, 100_000])
    ap.add_argument("--screen", default="varpro", choices=("varpro", "grid"))
    ap.add_argument("--bootstrap", type=int, default=0)
    a = ap.parse_args(argv)
    runs = [(n, a.bootstrap) for n in a.sizes]
    if not a.sizes or a.sizes == [1_000, 10_000, 100_000]:
        runs.append((10_000, 100))
    for n, boot in runs:
        t = synthetic(n)
        t0 = time.perf_counter()
        r = fit_method("approach3", t, bootstrap=boot, screen=a.screen)
        dt = time.perf_counter() - t0
        p = r.params
        label = f"approach3 ({a.screen}), {n:,} points" + (f" + {boot} bootstrap replicates" if boot else "")
        print(f"{label:<58} {dt:8.2f} s  {dt / n * 1e6:8.1f} us/point   alpha {p['alpha']:.4f} beta {p['beta']:.4f} "
              f"E {p['E']:.3f}  ({r.info['n_starts_polished']} polished, best in {r.info['iterations_best']} "
              f"iterations)", flush=True)


if __name__ == "__main__":
    main()
