"""The run table: aligned arrays of training runs and checkpoints, in base units, ready for the fitters.

Canonical columns (all floats, in base units):

* ``run``    run identifier (string). Rows of one run are checkpoints of one training curve.
* ``N``      parameters. Which parameters is metadata: ``param_count`` = "total" (Chinchilla, Epoch) or
             "non-embedding" (Kaplan). Nothing is converted; the convention travels into every fit and saved law.
* ``D``      training tokens seen.
* ``C``      training FLOPs.
* ``loss``   loss in nats/token (or whatever monotone loss the log has).
* ``step``   optimizer step (optional).
* ``budget`` IsoFLOP budget label in FLOPs (optional).
* ``U``      unique tokens the run's D tokens were drawn from (optional; D > U means repeated data, D/U epochs). Only
             the data-constrained fit (Muennighoff et al. 2023; docs/fitting.md §3.9) reads it.

Reading and validating logs (files or arrays) is :mod:`scaling_planner.io.runlog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class RunTable:
    """A validated table of runs/checkpoints. Arrays are aligned; ``run`` is a string array.

    ``source`` is the file name, ``sha256`` its content hash (so saved fits can say what they were fitted on).
    """

    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    loss: np.ndarray
    run: np.ndarray
    step: np.ndarray | None = None
    budget: np.ndarray | None = None
    U: np.ndarray | None = None
    source: str = "<memory>"
    sha256: str | None = None
    param_count: str = "total"
    columns: Mapping[str, str] = field(default_factory=dict)
    derived: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.N.shape[0])

    @property
    def runs(self) -> np.ndarray:
        """Unique run ids, in first-seen order."""
        _, idx = np.unique(self.run, return_index=True)
        return self.run[np.sort(idx)]

    @property
    def n_runs(self) -> int:
        return len(np.unique(self.run))

    @property
    def has_curves(self) -> bool:
        """True when at least one run has several checkpoints (per-step learning curves)."""
        _, counts = np.unique(self.run, return_counts=True)
        return bool(counts.max(initial=0) > 1)

    def subset(self, mask: np.ndarray) -> RunTable:
        mask = np.asarray(mask)
        opt = {k: (None if getattr(self, k) is None else getattr(self, k)[mask]) for k in ("step", "budget", "U")}
        return replace(self, N=self.N[mask], D=self.D[mask], C=self.C[mask], loss=self.loss[mask],
                       run=self.run[mask], **opt)

    def final(self) -> RunTable:
        """The last checkpoint of every run (largest D, then step)."""
        order = np.lexsort((self.step if self.step is not None else self.D, self.D, self.run))
        run_sorted = self.run[order]
        last = np.r_[run_sorted[1:] != run_sorted[:-1], True]
        return self.subset(np.sort(order[last]))

    def to_frame(self):
        import pandas as pd

        data = {"run": self.run, "N": self.N, "D": self.D, "C": self.C, "loss": self.loss}
        if self.step is not None:
            data["step"] = self.step
        if self.budget is not None:
            data["budget"] = self.budget
        if self.U is not None:
            data["U"] = self.U
        return pd.DataFrame(data)

    def describe(self) -> dict:
        """Small JSON-able summary used as the ``input`` block of fit output."""
        return {"file": self.source, "sha256": self.sha256, "rows": len(self), "runs": self.n_runs,
                "param_count": self.param_count, "columns": dict(self.columns),
                "derived": list(self.derived), "warnings": list(self.warnings),
                "N_range": [float(self.N.min()), float(self.N.max())] if len(self) else None,
                "C_range": [float(self.C.min()), float(self.C.max())] if len(self) else None}
