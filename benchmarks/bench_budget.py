"""Benchmark: a full `budget` plan (allocation, law intervals, shape, layout search with the memory model) and the
CLI start-up. Prints seconds.

    python benchmarks/bench_budget.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from scaling_planner.planner import plan_budget

CASES = [
    ("--flops 1e23 --gpu a100-80 (the README example)", dict(flops=1e23, gpu="a100-80")),
    ("--flops 1e21 --gpu h100", dict(flops=1e21, gpu="h100")),
    ("--flops 5e24 --gpu h100 --gpus 4096", dict(flops=5e24, gpu="h100", gpus=4096)),
    ("--flops 1e25 --gpu h100 (GPU count searched)", dict(flops=1e25, gpu="h100")),
]


def main():
    for label, kw in CASES:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            plan_budget(**kw)
            times.append(time.perf_counter() - t0)
        print(f"plan_budget {label:<48} median {statistics.median(times) * 1000:7.1f} ms")
    for args in (["--help"], ["budget", "--flops", "1e23", "--gpu", "a100-80", "--json"]):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "scaling_planner", *args], capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        print(f"CLI scaleplan {' '.join(args):<48} median {statistics.median(times) * 1000:7.1f} ms (wall, new process)")


if __name__ == "__main__":
    main()
