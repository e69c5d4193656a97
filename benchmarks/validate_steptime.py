"""Validation table of the step-time model: each published run of tests/fixtures/published_steptime.csv predicted with
the model's defaults and the run's own layout (docs/planning.md §5.4). Prints a Markdown table and the summary.

    python benchmarks/validate_steptime.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_steptime_validation import errors, predict  # noqa: E402


def main() -> None:
    rows = errors()
    print("| run | GPUs | layout (TP·PP·CP·EP, VP) | precision | published | predicted | error | predicted MFU |")
    print("|---|---|---|---|---|---|---|---|")
    for r, e in rows:
        got, st = predict(r)
        lay = f"{r['tp']}·{r['pp']}·{r['cp']}·{r['ep']}, {r['vp']}"
        unit = "tok/s/GPU" if r["metric"] == "tokens_per_s_per_gpu" else "TFLOP/s/GPU"
        print(f"| {r['run']} | {r['gpus']} x {r['gpu']} | {lay} | {r['precision']} | {float(r['published']):,.0f} "
              f"{unit} | {got:,.0f} | {e:+.1%} | {st.mfu:.2f} |")
    errs = [e for _, e in rows]
    print(f"\n{len(errs)} runs: median |error| {statistics.median(abs(e) for e in errs):.1%}, median signed error "
          f"{statistics.median(errs):+.1%}, within ±15%: {sum(abs(e) <= 0.15 for e in errs)}, "
          f"worst {min(errs):+.1%} / {max(errs):+.1%}")


if __name__ == "__main__":
    main()
