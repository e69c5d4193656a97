"""Benchmark: reading a large run log (a CSV of 1M checkpoints: 20,000 runs x 50 steps; run, N, D, loss, step) into a
RunTable, and the same file with a column that needs the cell-by-cell parser (size suffixes like "1.3B"). Prints
seconds (best of 3).

    python benchmarks/bench_load.py            # 1,000,000 rows
    python benchmarks/bench_load.py 200000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scaling_planner.io.runlog import load_runs


def write_log(path: Path, n: int, suffixed: bool = False) -> None:
    rng = np.random.default_rng(0)
    per = 50
    runs = max(1, n // per)
    rid = np.repeat(np.arange(runs), per)[:n]
    size = np.exp(rng.uniform(np.log(1e7), np.log(1e10), runs))[rid]
    step = np.tile(np.arange(1, per + 1), runs)[:n]
    D = step * 2e6 * (1 + rid % 3)
    L = 1.82 + 482 / size**0.3478 + 2085 / D**0.3658
    Ncol = [f"{v / 1e9:.4g}B" for v in size] if suffixed else [f"{v:.6g}" for v in size]
    with open(path, "w") as fh:
        fh.write("run,N,D,loss,step\n")
        fh.writelines(f"run{r},{nc},{d:.6g},{loss:.6f},{s}\n" for r, nc, d, loss, s in zip(rid, Ncol, D, L, step))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        for suffixed in (False, True):
            p = Path(tmp) / f"runs{'_suffixed' if suffixed else ''}.csv"
            write_log(p, n, suffixed)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                t = load_runs(p, {"run": "run"})
                times.append(time.perf_counter() - t0)
            what = "N column with suffixes (1.3B)" if suffixed else "plain numbers"
            print(f"load_runs: {n:,} rows, {what:<30} best {min(times):6.2f} s   median {np.median(times):6.2f} s   "
                  f"({p.stat().st_size / 1e6:.0f} MB, {t.n_runs:,} runs)", flush=True)


if __name__ == "__main__":
    main()
