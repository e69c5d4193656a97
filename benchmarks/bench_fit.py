"""Benchmark: Approach 3 on Epoch's 240 Chinchilla points (the variable-projection screen, and Hoffmann's 4,500-start
grid; then 1,000 bootstrap replicates re-converged from the optimum), every other method on the example data, and a
side-by-side with the `chinchilla` toolkit (kyo-takano/chinchilla) on its own example when it is installed. Prints
seconds (best and median of 3 unless said).

    python benchmarks/bench_fit.py                        # everything
    python benchmarks/bench_fit.py --toolkit-python PATH  # the toolkit in another interpreter (its own venv)
    python benchmarks/bench_fit.py --only toolkit         # just the side-by-side

The toolkit is looked for in this interpreter, then in --toolkit-python or $SCALEPLAN_TOOLKIT_PYTHON. Without it the
side-by-side prints the reference figure measured on the 2-core development machine (issue 13): 56-67 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scaling_planner.fitting import fit_method
from scaling_planner.io.runlog import load_runs

ROOT = Path(__file__).resolve().parent.parent
EPOCH = ROOT / "examples" / "epoch_chinchilla" / "chinchilla_points.csv"
TOOLKIT_REFERENCE_S = (56.0, 67.0)  # issue 13: the toolkit's example fit on the 2-core development machine


def timed(label, fn, repeat=3):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    print(f"{label:<62} best {min(times):7.3f} s   median {np.median(times):7.3f} s", flush=True)
    return out, min(times)


def epoch240():
    t = load_runs(EPOCH)
    return t.subset(np.sort(np.argsort(t.loss, kind="stable")[:-5]))


def bench_methods():
    t = epoch240()
    r, _ = timed("approach3 varpro screen, 240 points", lambda: fit_method("approach3", t, bootstrap=0))
    print(f"    objective {r.objective:.10f}; {r.info['n_starts']} exponent pairs screened, "
          f"{r.info['n_starts_polished']} polished, {r.info['n_starts_at_best']} at the best")
    g, _ = timed("approach3 4,500-start grid (--screen grid), 240 points",
                 lambda: fit_method("approach3", t, bootstrap=0, screen="grid"))
    print(f"    objective {g.objective:.10f}; {g.info['n_starts_at_best']} of 4,500 starts at the best; "
          f"|objective difference| {abs(g.objective - r.objective):.1e}")
    r, _ = timed("approach3 varpro + 1,000 bootstrap replicates", lambda: fit_method("approach3", t, bootstrap=1000))
    print(f"    {r.info['bootstrap']['converged']} of 1000 replicates converged")
    iso = load_runs(ROOT / "examples" / "chinchilla_isoflops" / "isoflops.csv")
    timed("approach2: 85 IsoFLOP points + 1,000 replicates", lambda: fit_method("approach2", iso, bootstrap=1000))
    curves = load_runs(ROOT / "examples" / "misfitting_li2025" / "learning_curves.csv",
                       {"run": "model+peak_lr+total_steps"})
    timed("approach1: 4,852 checkpoints, 240 runs + 1,000 replicates",
          lambda: fit_method("approach1", curves, bootstrap=1000), repeat=1)
    timed("kaplan_ND: 240 points + 1,000 replicates", lambda: fit_method("kaplan_ND", t, bootstrap=1000), repeat=1)


# ------------------------------------------------------------------------------------------- the toolkit
# Its example (examples/llm/main.ipynb @ 75e5858): the 234 Epoch points with C > 1e18 and N < D (D = C/6N, N and D
# rounded to integers, loss to 6 decimals), asymmetric MAE on the loss, BFGS from a 5^5 grid.
TOOLKIT_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from chinchilla import Chinchilla
grid = dict(E=np.linspace(1.4, 2.0, 5), a=np.linspace(1, 10, 5), b=np.linspace(1, 10, 5),
            alpha=np.linspace(0.1, 0.7, 5), beta=np.linspace(0.1, 0.7, 5))
t1 = time.perf_counter()
cc = Chinchilla(sys.argv[1], param_grid=grid, log_level=40)
cc.fit()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "fit_s": t2 - t1, "params": {k: float(v) for k, v in cc.get_params().items()}}))
"""


def toolkit_data(folder: Path) -> Path:
    """The toolkit example's df.csv, rebuilt from Epoch's points (byte-for-byte the same rows as its df.csv)."""
    t = load_runs(EPOCH)
    C, N = t.C, t.N
    D = C / (6 * N)
    keep = (C > 1e18) & (N < D)
    p = folder / "df.csv"
    with open(p, "w") as fh:
        fh.write("C,N,D,loss\n")
        for c, n, d, loss in zip(C[keep], N[keep], D[keep], t.loss[keep]):
            fh.write(f"{float(c)!r},{int(round(n))},{int(round(d))},{loss:.6f}\n")
    return p


def find_toolkit(arg: str | None) -> str | None:
    if importlib.util.find_spec("chinchilla") is not None:
        return sys.executable
    cand = arg or os.environ.get("SCALEPLAN_TOOLKIT_PYTHON")
    if cand and subprocess.run([cand, "-c", "import chinchilla"], capture_output=True).returncode == 0:
        return cand
    return None


def bench_toolkit(toolkit_python: str | None):
    print("\nside by side with the chinchilla toolkit (its LLM example: 234 points)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        df = toolkit_data(folder)
        t = load_runs(df)
        ours_fit, fit_s = timed("scaleplan approach3 fit (in process, Huber, varpro)",
                                lambda: fit_method("approach3", t, bootstrap=0))
        timed("scaleplan approach3 fit (in process, --loss asymmetric)",
              lambda: fit_method("approach3", t, bootstrap=0, loss="asymmetric"))
        cmd = [sys.executable, "-m", "scaling_planner", "fit", str(df), "--method", "approach3", "--bootstrap", "0",
               "--json"]
        _, e2e = timed("scaleplan fit df.csv --method approach3 --bootstrap 0 (end to end)",
                       lambda: subprocess.run(cmd, capture_output=True, check=True))
        py = find_toolkit(toolkit_python)
        if py is None:
            lo, hi = TOOLKIT_REFERENCE_S
            print(f"toolkit not installed (pip install chinchilla, or --toolkit-python PATH); reference on the 2-core "
                  f"development machine: {lo:.0f}-{hi:.0f} s end to end -> scaleplan {lo / e2e:.0f}-{hi / e2e:.0f}x "
                  "faster end to end")
            return
        runs = []
        for _ in range(2):
            proj = folder / f"toolkit{len(runs)}"
            proj.mkdir()
            (proj / "df.csv").write_bytes(df.read_bytes())
            t0 = time.perf_counter()
            out = subprocess.run([py, "-c", TOOLKIT_SCRIPT, str(proj)], capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            runs.append((wall, json.loads(out.stdout.strip().splitlines()[-1])))
        wall, info = min(runs, key=lambda r: r[0])
        print(f"{'toolkit Chinchilla(...).fit() (end to end, best of 2)':<62} wall {wall:7.1f} s   (fit "
              f"{info['fit_s']:.1f} s, import {info['import_s']:.1f} s)")
        p = info["params"]
        print(f"    toolkit: E {p.get('E', float('nan')):.4g}, A {p.get('A', float('nan')):.4g}, B "
              f"{p.get('B', float('nan')):.4g}, alpha {p.get('alpha', float('nan')):.4g}, beta "
              f"{p.get('beta', float('nan')):.4g} (asymmetric MAE; not comparable to Huber fits)")
        print(f"side-by-side: scaleplan is {wall / e2e:.0f}x faster end to end ({wall:.1f} s vs {e2e:.2f} s), "
              f"{info['fit_s'] / fit_s:.0f}x on the fit alone")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--toolkit-python", help="an interpreter that can import chinchilla")
    ap.add_argument("--only", choices=("methods", "toolkit"))
    a = ap.parse_args(argv)
    if a.only != "toolkit":
        bench_methods()
    if a.only != "methods":
        bench_toolkit(a.toolkit_python)


if __name__ == "__main__":
    main()
