"""Run logs: read a table of training runs into a validated :class:`RunTable`.

Canonical columns (all floats, in base units):

* ``run``    run identifier (string). Rows of one run are checkpoints of one training curve.
* ``N``      parameters. Which parameters is metadata: ``param_count`` = "total" (Chinchilla, Epoch) or
             "non-embedding" (Kaplan). Nothing is converted; the convention travels into every fit and saved law.
* ``D``      training tokens seen.
* ``C``      training FLOPs (PF-days in the file are converted with ``flops_unit="pf-days"``).
* ``loss``   loss in nats/token (or whatever monotone loss the file has).
* ``step``   optimizer step (optional).
* ``budget`` IsoFLOP budget label in FLOPs (optional).

Missing quantities are derived with C = 6·N·D and the derivation is recorded in ``RunTable.derived``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ScalePlanError
from .units import flops_unit_factor, parse_quantity

CANONICAL = ("run", "N", "D", "C", "loss", "step", "budget")
NUMERIC = ("N", "D", "C", "loss", "step", "budget")

ALIASES: dict[str, tuple[str, ...]] = {
    "run": ("run", "run_id", "name", "model", "experiment"),
    "N": ("N", "params", "n_params", "num_params", "parameters", "model_size", "Model Size",
          "non_embedding_params"),
    "D": ("D", "tokens", "n_tokens", "tokens_seen", "train_tokens", "training_tokens", "D_tokens"),
    "C": ("C", "flops", "compute", "Training FLOP", "train_flops"),
    "loss": ("loss", "val_loss", "eval_loss", "validation_loss", "train_loss"),
    "step": ("step", "steps", "iteration"),
    "budget": ("budget", "budget_flops", "compute_budget", "isoflop"),
}
PARAM_COUNTS = ("total", "non-embedding")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


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
        opt = {k: (None if getattr(self, k) is None else getattr(self, k)[mask]) for k in ("step", "budget")}
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
        return pd.DataFrame(data)

    def describe(self) -> dict:
        """Small JSON-able summary used as the ``input`` block of fit output."""
        return {"file": self.source, "sha256": self.sha256, "rows": len(self), "runs": self.n_runs,
                "param_count": self.param_count, "columns": dict(self.columns),
                "derived": list(self.derived), "warnings": list(self.warnings),
                "N_range": [float(self.N.min()), float(self.N.max())] if len(self) else None,
                "C_range": [float(self.C.min()), float(self.C.max())] if len(self) else None}


def from_arrays(N=None, D=None, C=None, loss=None, run=None, step=None, budget=None, *,
                param_count: str = "total", source: str = "<memory>") -> RunTable:
    """Build a RunTable from arrays (notebooks, tests). Same derivation and validation as :func:`load_runs`."""
    import pandas as pd

    cols = {"N": N, "D": D, "C": C, "loss": loss, "run": run, "step": step, "budget": budget}
    n = max(len(np.atleast_1d(v)) for v in cols.values() if v is not None)
    frame = pd.DataFrame({k: np.atleast_1d(v) for k, v in cols.items() if v is not None}, index=range(n))
    return _table_from_frame(frame, {k: k for k in frame.columns}, source=source, sha=None,
                             flops_factor=1.0, param_count=param_count, first_line=2)


def _read_frame(path: Path):
    import pandas as pd

    ext = path.suffix.lower()
    try:
        if ext in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True), 2
        if ext == ".tsv":
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""],
                               skipinitialspace=True), 2
        if ext in (".jsonl", ".ndjson"):
            rows = []
            with open(path, encoding="utf-8") as fh:
                for i, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as e:
                            raise ScalePlanError(f"{path}: line {i} is not valid JSON ({e.msg}); "
                                                 "fix or remove that line") from None
            return pd.DataFrame.from_records(rows), 1
        if ext == ".json":
            with open(path, encoding="utf-8") as fh:
                try:
                    data = json.load(fh)
                except json.JSONDecodeError as e:
                    raise ScalePlanError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
            if isinstance(data, dict):
                for key in ("runs", "data", "records"):
                    if isinstance(data.get(key), list):
                        data = data[key]
                        break
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise ScalePlanError(f"{path}: expected a JSON array of records (objects), one per run/checkpoint")
            return pd.DataFrame.from_records(data), 1
        if ext == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ScalePlanError(f"{path}: reading Parquet needs pyarrow; install it with "
                                     "pip install 'scaleplan[parquet]'") from None
            return pd.read_parquet(path), 1
    except ScalePlanError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ScalePlanError(f"{path}: cannot parse as {ext[1:].upper()} ({str(e).splitlines()[0]})") from None
    raise ScalePlanError(f"{path}: unknown file type {ext!r}; use .csv, .tsv, .jsonl, .json or .parquet")


def _map_columns(frame, overrides: Mapping[str, str], path: str) -> tuple[dict[str, str], list[str]]:
    """Map canonical names to file columns. Returns (mapping canonical->file column(s), warnings)."""
    warnings: list[str] = []
    cols = [str(c) for c in frame.columns]
    by_norm: dict[str, str] = {}
    for c in cols:
        by_norm.setdefault(_norm(c), c)
    mapping: dict[str, str] = {}
    for canon, col in overrides.items():
        if canon not in CANONICAL:
            raise ScalePlanError(f"--col {canon}={col}: unknown column role {canon!r}; roles are "
                                 + ", ".join(CANONICAL))
        for part in col.split("+"):
            if part not in cols:
                raise ScalePlanError(f"{path}: --col {canon}={col}: no column {part!r}; columns are "
                                     + ", ".join(cols))
        mapping[canon] = col
    used = {p for v in mapping.values() for p in v.split("+")}
    for canon in CANONICAL:
        if canon in mapping:
            continue
        hits = list(dict.fromkeys(by_norm[_norm(a)] for a in ALIASES[canon]
                                  if _norm(a) in by_norm and by_norm[_norm(a)] not in used))
        # exact-case single letters (N, D, C) should not be confused across roles: 'c' is C, 'd' is D, 'n' is N
        if hits:
            mapping[canon] = hits[0]
            used.add(hits[0])
            others = sorted(set(hits[1:]))
            if others:
                warnings.append(f"column {hits[0]!r} used as {canon}; also matched {', '.join(map(repr, others))} "
                                f"(override with --col {canon}=COLUMN)")
    return mapping, warnings


def _parse_column(values, path: str, col: str, first_line: int) -> np.ndarray:
    import pandas as pd

    ser = pd.Series(values)
    out = np.array(pd.to_numeric(ser, errors="coerce"), dtype=float)  # a writable copy
    bad = np.flatnonzero(np.isnan(out) & ser.notna().to_numpy())
    for i in bad:
        raw = ser.iloc[i]
        if isinstance(raw, str) and raw.strip() == "":
            continue
        try:
            out[i] = parse_quantity(raw)
        except (ValueError, TypeError):
            raise ScalePlanError(f"{path}: row {i + 1} (line {i + first_line}), column {col!r}: {raw!r} is not a "
                                 "number (suffixes k/M/B/T allowed); fix the cell or drop the row") from None
    return out


def load_runs(path: str | Path, columns: Mapping[str, str] | None = None, *, flops_unit: str = "flops",
              param_count: str = "total") -> RunTable:
    """Read a run log (CSV, TSV, JSON Lines, JSON array, Parquet) into a validated RunTable.

    ``columns`` overrides the alias mapping, e.g. ``{"loss": "my_loss"}``; ``{"run": "model+peak_lr"}`` joins
    several columns into one run id. ``flops_unit="pf-days"`` converts a compute column given in PF-days.
    ``param_count`` ("total" or "non-embedding") states what the N column counts.
    """
    p = Path(path)
    if not p.exists():
        raise ScalePlanError(f"{p}: no such file")
    if p.is_dir():
        raise ScalePlanError(f"{p}: is a directory; pass a run-log file")
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    frame, first_line = _read_frame(p)
    if len(frame) == 0:
        raise ScalePlanError(f"{p}: no rows")
    mapping, warns = _map_columns(frame, dict(columns or {}), str(p))
    return _table_from_frame(frame, mapping, source=p.name, sha=sha, flops_factor=flops_unit_factor(flops_unit),
                             param_count=param_count, first_line=first_line, warnings=warns, path=str(p))


def _table_from_frame(frame, mapping, *, source, sha, flops_factor, param_count, first_line,
                      warnings=None, path=None) -> RunTable:
    path = path or source
    if param_count not in PARAM_COUNTS:
        raise ScalePlanError(f"--param-count must be one of {', '.join(PARAM_COUNTS)}, got {param_count!r}")
    warnings = list(warnings or [])
    derived: list[str] = []
    n = len(frame)
    num: dict[str, np.ndarray] = {}
    for canon in NUMERIC:
        if canon in mapping:
            num[canon] = _parse_column(frame[mapping[canon]].to_numpy(), path, mapping[canon], first_line)
    if "loss" not in num:
        raise ScalePlanError(f"{path}: no loss column (looked for {', '.join(ALIASES['loss'])}); "
                             "name it with --col loss=COLUMN")
    if "C" not in num and "budget" in num and not np.isnan(num["budget"]).any():
        num["C"] = num["budget"].copy()  # converted with the budget below
        mapping = {**mapping, "C": mapping["budget"]}
        derived.append("C = budget (IsoFLOP label; no compute column)")
    have = [k for k in ("N", "D", "C") if k in num]
    if len(have) < 2:
        missing = [k for k in ("N", "D", "C") if k not in num]
        raise ScalePlanError(f"{path}: need two of N (params), D (tokens), C (FLOPs) to derive the third; missing "
                             + " and ".join(missing) + "; name them with --col N=COLUMN etc.")
    if "C" in num and flops_factor != 1.0 and mapping["C"] != mapping.get("budget"):
        num["C"] = num["C"] * flops_factor
        derived.append(f"C converted from PF-days to FLOPs (x{flops_factor:.4g})")
    if "budget" in num and flops_factor != 1.0:
        num["budget"] = num["budget"] * flops_factor
    if "run" in mapping:
        parts = [frame[c].astype(str).to_numpy() for c in mapping["run"].split("+")]
        run = parts[0].astype(object)
        for extra in parts[1:]:
            run = run + "|" + extra.astype(object)
        run = run.astype(str)
    else:
        run = np.array([f"row{i + 1}" for i in range(n)])

    # Drop rows with missing values in the columns we use (with a count), then validate the rest.
    used = [k for k in ("N", "D", "C", "loss") if k in num]
    missing = np.zeros(n, dtype=bool)
    for k in used:
        missing |= np.isnan(num[k]) & ~_is_literal_nan(frame[mapping[k]].to_numpy())
    if missing.any():
        warnings.append(f"dropped {int(missing.sum())} row(s) with missing values in "
                        + ", ".join(mapping[k] for k in used))
    for k in used + [k for k in ("step", "budget") if k in num]:
        vals = num[k]
        bad = ~missing & (~np.isfinite(vals) | (vals <= 0 if k != "step" else vals < 0))
        if k in ("step", "budget"):
            bad &= ~np.isnan(vals)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScalePlanError(f"{path}: row {i + 1} (line {i + first_line}), column {mapping[k]!r}: value "
                                 f"{vals[i]!r} must be finite and > 0; fix or remove the row"
                                 + (f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else ""))
    keep = ~missing
    for k in num:
        num[k] = num[k][keep]
    run = run[keep]
    if not keep.any():
        raise ScalePlanError(f"{path}: every row has a missing value; nothing to use")

    # Derive the missing quantity with C = 6 N D (floats: N*D overflows int64 for real runs).
    if "C" not in num:
        num["C"] = 6.0 * num["N"] * num["D"]
        derived.append("C = 6·N·D (no compute column)")
    elif "D" not in num:
        num["D"] = num["C"] / (6.0 * num["N"])
        derived.append("D = C/(6·N) (no token column)")
    elif "N" not in num:
        num["N"] = num["C"] / (6.0 * num["D"])
        derived.append("N = C/(6·D) (no parameter column)")

    key = np.stack([num["N"], num["D"], num["loss"]], axis=1)
    if "run" in mapping:
        key = np.c_[key, np.unique(run, return_inverse=True)[1]]
    _, counts = np.unique(key, axis=0, return_counts=True)
    if (counts > 1).any():
        warnings.append(f"{int((counts - 1)[counts > 1].sum())} duplicate row(s) (same run, N, D and loss)")

    return RunTable(N=num["N"], D=num["D"], C=num["C"], loss=num["loss"], run=run, step=num.get("step"),
                    budget=num.get("budget"), source=source, sha256=sha, param_count=param_count,
                    columns={k: v for k, v in mapping.items()}, derived=tuple(derived), warnings=tuple(warnings))


def _is_literal_nan(values) -> np.ndarray:
    """True where the cell literally says nan/inf (so validation reports it instead of dropping it)."""
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, str) and v.strip().lower() in {"nan", "inf", "-inf", "+inf", "infinity", "-infinity"}:
            out[i] = True
        elif isinstance(v, float) and np.isinf(v):
            out[i] = True
    return out
