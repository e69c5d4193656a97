"""Run logs: read a table of training runs (CSV, TSV, JSON, JSONL, Parquet, or arrays) into a validated
:class:`~scaling_planner.runs.RunTable`.

Canonical columns (all floats, in base units):

* ``run``    run identifier (string). Rows of one run are checkpoints of one training curve.
* ``N``      parameters. Which parameters is metadata: ``param_count`` = "total" (Chinchilla, Epoch) or
             "non-embedding" (Kaplan). Nothing is converted; the convention travels into every fit and saved law.
* ``D``      training tokens seen.
* ``C``      training FLOPs (PF-days in the file are converted with ``flops_unit="pf-days"``).
* ``loss``   loss in nats/token (or whatever monotone loss the file has); bits and perplexity are converted with
             ``loss_unit="bits"`` / ``"ppl"``.
* ``step``   optimizer step (optional).
* ``budget`` IsoFLOP budget label in FLOPs (optional).
* ``U``      unique tokens the D tokens were drawn from (optional), or ``epochs`` (then U = D/epochs): repeated data,
             read only by the data-constrained fit (docs/fitting.md §3.9).

Columns holding log10 of N, D, C or the budget are converted with ``log10=(column, ...)``. Missing quantities are
derived with C = 6·N·D; every derivation and conversion is recorded in ``RunTable.derived``. Values that look like
the wrong unit (perplexity, log10 counts, PF-days) and run ids that do not identify runs are errors with the fix:
see :func:`load_runs` for the thresholds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ScalePlanError
from ..runs import RunTable
from ..units import flops_unit_factor, parse_quantity

CANONICAL = ("run", "N", "D", "C", "loss", "step", "budget", "U", "epochs")
NUMERIC = ("N", "D", "C", "loss", "step", "budget", "U", "epochs")

ALIASES: dict[str, tuple[str, ...]] = {
    "run": ("run", "run_id", "name", "model", "experiment"),
    "N": ("N", "params", "n_params", "num_params", "parameters", "model_size", "Model Size",
          "non_embedding_params"),
    "D": ("D", "tokens", "n_tokens", "tokens_seen", "train_tokens", "training_tokens", "D_tokens"),
    "C": ("C", "flops", "compute", "Training FLOP", "train_flops"),
    "loss": ("loss", "val_loss", "eval_loss", "validation_loss", "train_loss"),
    "step": ("step", "steps", "iteration"),
    "budget": ("budget", "budget_flops", "compute_budget", "isoflop"),
    "U": ("U", "unique_tokens", "n_unique_tokens"),
    "epochs": ("epochs", "num_epochs", "n_epochs"),
}
PARAM_COUNTS = ("total", "non-embedding")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


# ------------------------------------------------------------------------------------------- sanity thresholds
LOSS_UNITS = {"nats": "nats", "nat": "nats", "bits": "bits", "bit": "bits", "ppl": "ppl", "perplexity": "ppl"}
LOSS_MEDIAN_MAX = 10.0  # nats/token; LM losses are ~1.5-8, a uniform guess over a 50k vocabulary is 10.8
COUNT_MAX_BELOW = {"N": 1e4, "D": 1e4, "C": 1e9, "budget": 1e9}  # a column whose LARGEST value is below this is not counts
LOG10_MAX = 100.0  # a --log10 column holding a value above this is not log10 of a count
MERGED_FRACTION = 0.10  # (run, D) pairs repeated with a different loss, as a fraction of rows: error above this
_ROLE_WORDS = {"N": "parameter counts", "D": "token counts", "C": "FLOPs", "budget": "FLOPs"}
_LOG10_RANGE = {"N": (2.0, 13.0), "D": (2.0, 16.0), "C": (5.0, 30.0), "budget": (5.0, 30.0)}


def from_arrays(N=None, D=None, C=None, loss=None, run=None, step=None, budget=None, U=None, epochs=None, *,
                param_count: str = "total", source: str = "<memory>", loss_unit: str | None = None,
                log10: str | tuple[str, ...] = ()) -> RunTable:
    """Build a RunTable from arrays (notebooks, tests). Same derivation and validation as :func:`load_runs`.

    NaN marks a missing value (the row is dropped with a count); ``inf`` is an error. ``log10`` names roles
    ("N", "D", "C", "budget") whose arrays hold log10 values.
    """
    import pandas as pd

    cols = {"N": N, "D": D, "C": C, "loss": loss, "run": run, "step": step, "budget": budget, "U": U, "epochs": epochs}
    n = max(len(np.atleast_1d(v)) for v in cols.values() if v is not None)
    frame = pd.DataFrame({k: np.atleast_1d(v) for k, v in cols.items() if v is not None}, index=range(n))
    return _table_from_frame(frame, {k: k for k in frame.columns}, source=source, sha=None, flops_factor=1.0,
                             param_count=param_count, lines=None, loss_unit=_check_loss_unit(loss_unit),
                             log10=_log10_names(log10))


def _check_loss_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    key = str(unit).strip().lower()
    if key not in LOSS_UNITS:
        raise ScalePlanError(f"--loss-unit {unit!r}: use nats, bits or ppl (perplexity)")
    return LOSS_UNITS[key]


def _log10_names(log10) -> tuple[str, ...]:
    if not log10:
        return ()
    if isinstance(log10, str):
        log10 = log10.split(",")
    return tuple(dict.fromkeys(str(c).strip() for c in log10 if str(c).strip()))


def _csv_lines(path: Path, sep: str, n_rows: int) -> tuple[list[str] | None, np.ndarray | None]:
    """Raw header names and the file line each data row starts on (blank lines skipped, quoted newlines counted),
    or None where the csv module reads the file differently from pandas."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)
            header, starts, prev = None, [], 0
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                if not rec or (len(rec) == 1 and not rec[0].strip() and header is not None):
                    continue
                if header is None:
                    header = rec
                else:
                    starts.append(start)
    except (csv.Error, UnicodeDecodeError, OSError):
        return None, None
    return header, (np.asarray(starts) if len(starts) == n_rows else None)


_CSV_OPTIONS = dict(keep_default_na=False, na_values=[""], skipinitialspace=True)  # empty cells are missing
_RAW_TEXT = "scaleplan_raw_text"  # frame.attrs key of typed CSV reads: (column, row) -> the file's text of that cell


class _LineNumbers:
    """The file line each data row starts on, found by a second pass over the file (:func:`_csv_lines`) only when
    a message needs one (row numbers otherwise, as :func:`_read_frame` falls back to)."""

    def __init__(self, path: Path, sep: str, n_rows: int):
        self.path, self.sep, self.n_rows, self._lines = path, sep, n_rows, None

    def _get(self) -> np.ndarray:
        if self._lines is None:
            _, lines = _csv_lines(self.path, self.sep, self.n_rows)
            self._lines = lines if lines is not None else np.arange(self.n_rows) + 2
        return self._lines

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, i):
        return self._get()[i]

    def __array__(self, dtype=None, copy=None):
        return self._get() if dtype is None else self._get().astype(dtype)


def _csv_header(path: Path, sep: str) -> list[str] | None:
    """The first record of the file (the header) as the csv module reads it, or None where it cannot."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for rec in csv.reader(fh, delimiter=sep, skipinitialspace=True):
                if rec:
                    return rec
    except (csv.Error, UnicodeDecodeError, OSError):
        return None
    return None


def _read_csv_typed(path: Path, sep: str, columns: Mapping[str, str]):
    """(frame, lines, header) like the text read, in a fraction of its time on large files, or None (then the text
    read is used): the columns of the numeric roles are parsed by pandas' C parser and kept as numbers only when every
    cell was a plain number or empty (integer columns, or floats with no infinity; its floats are correctly rounded,
    as Python's, and it reads ``nan``, ``1.3B``, ``1,000``, ``1_000`` or ``True`` as text, so such a column is re-read
    as text and parsed cell by cell as before). The file's own text of a typed cell, which messages quote, is
    re-read on demand (``frame.attrs``); the line numbers too (:class:`_LineNumbers`)."""
    import warnings

    import pandas as pd

    header = _csv_header(path, sep)
    if header is None or len({h.strip() for h in header}) < len(header) or \
            len({_norm(h) for h in header}) < len(header):
        return None  # repeated (or nearly repeated) names: the text read's checks need the full pass
    empty = pd.read_csv(path, sep=sep, nrows=0, **_CSV_OPTIONS)
    try:
        mapping, _ = _map_columns(empty, dict(columns), str(path), header)
    except ScalePlanError:
        return None  # the text read reports it
    names = [str(c) for c in empty.columns]
    numeric = {mapping[k] for k in NUMERIC if k in mapping and mapping[k] in names}
    numeric -= set(mapping.get("run", "").split("+"))  # run ids join the file's text
    if not numeric:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mixed-type chunks (DtypeWarning): such a column is re-read as text below
        frame = pd.read_csv(path, sep=sep, dtype={c: str for c in names if c not in numeric}, **_CSV_OPTIONS)
    text = []
    for c in numeric:
        v = frame[c].to_numpy()
        if not (v.dtype.kind in "iu" or (v.dtype.kind == "f" and not np.isinf(v).any())):
            text.append(c)
    if text:
        raw = pd.read_csv(path, sep=sep, usecols=[names.index(c) for c in text], dtype=str, **_CSV_OPTIONS)
        for c in text:
            frame[c] = raw[c]

    def raw_text(col: str, i: int):
        cell = pd.read_csv(path, sep=sep, usecols=[names.index(col)], dtype=str, **_CSV_OPTIONS).iloc[i, 0]
        return cell

    frame.attrs[_RAW_TEXT] = raw_text
    return frame, _LineNumbers(path, sep, len(frame)), header


def _json_constant(name: str) -> str:
    """JSON's NaN/Infinity literals stay text, so the cell parser reports them instead of treating them as missing."""
    return name


def _read_frame(path: Path, columns: Mapping[str, str] | None = None):
    """(frame, line of each row or None, raw header names or None).

    CSV cells are text, except (when ``columns``, the ``--col`` overrides, is given) the columns of the numeric roles,
    which pandas' C parser reads as numbers when that gives exactly the floats the cell parser would: see
    :func:`_read_csv_typed`."""
    import pandas as pd

    ext = path.suffix.lower()
    try:
        if ext in (".csv", ".txt", ".tsv"):
            sep = "\t" if ext == ".tsv" else ","
            if columns is not None:
                typed = _read_csv_typed(path, sep, columns)
                if typed is not None:
                    return typed
            frame = pd.read_csv(path, sep=sep, dtype=str, **_CSV_OPTIONS)
            header, lines = _csv_lines(path, sep, len(frame))
            if lines is None:
                lines = np.arange(len(frame)) + 2
            return frame, lines, header
        if ext in (".jsonl", ".ndjson"):
            rows, lines = [], []
            with open(path, encoding="utf-8") as fh:
                for i, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            rec = json.loads(line, parse_constant=_json_constant)
                        except json.JSONDecodeError as e:
                            raise ScalePlanError(f"{path}: line {i} is not valid JSON ({e.msg}); "
                                                 "fix or remove that line") from None
                        if not isinstance(rec, dict):
                            raise ScalePlanError(f"{path}: line {i} is not a JSON object; each line must be one "
                                                 "record like {\"N\": 1e8, \"D\": 2e9, \"loss\": 3.1}")
                        rows.append(rec)
                        lines.append(i)
            return pd.DataFrame.from_records(rows), np.asarray(lines), None
        if ext == ".json":
            with open(path, encoding="utf-8") as fh:
                try:
                    data = json.load(fh, parse_constant=_json_constant)
                except json.JSONDecodeError as e:
                    raise ScalePlanError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
            if isinstance(data, dict):
                for key in ("runs", "data", "records"):
                    if isinstance(data.get(key), list):
                        data = data[key]
                        break
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise ScalePlanError(f"{path}: expected a JSON array of records (objects), one per run/checkpoint")
            return pd.DataFrame.from_records(data), None, None
        if ext == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ScalePlanError(f"{path}: reading Parquet needs pyarrow; install it with "
                                     "pip install 'scaleplan[parquet]'") from None
            return _read_parquet(path), None, None
    except ScalePlanError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ScalePlanError(f"{path}: cannot parse as {ext[1:].upper()} ({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise ScalePlanError(f"{path}: cannot read ({e.strerror or e}); check the path and its permissions") from None
    except Exception as e:
        if type(e).__module__.startswith("pyarrow"):  # ArrowInvalid etc.: not a Parquet file
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ScalePlanError(f"{path}: cannot parse as {ext[1:].upper()} ({first})") from None
        raise
    raise ScalePlanError(f"{path}: unknown file type {ext!r}; use .csv, .tsv, .jsonl, .json or .parquet")


def _read_parquet(path: Path):
    """Parquet with NaN (an error, as everywhere) told apart from null (a missing value: the row is dropped)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    table = pq.read_table(path)
    frame = table.to_pandas()
    for j in range(table.num_columns):
        col = table.column(j)
        if not pat.is_floating(col.type):
            continue
        nan = np.asarray(pc.fill_null(pc.is_nan(col), False).to_numpy(zero_copy_only=False), dtype=bool)
        if nan.any():
            vals = np.array(frame.iloc[:, j].to_numpy(), dtype=object)  # a writable copy
            vals[nan] = "NaN"
            frame.isetitem(j, vals)
    return frame


def _map_columns(frame, overrides: Mapping[str, str], path: str,
                 header: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Map canonical names to file columns. Returns (mapping canonical->file column(s), warnings).

    Two columns with the same name (pandas reads the second as ``name.1``), or names that differ only in case,
    spaces, ``_`` or ``-``, are an error when the role they would fill is not named with ``--col``.
    """
    warnings: list[str] = []
    cols = [str(c) for c in frame.columns]
    same_name: dict[str, list[str]] = {}  # pandas column -> all pandas columns that had the same raw header name
    if header is not None and len(header) == len(cols):
        groups: dict[str, list[str]] = {}
        for raw, c in zip(header, cols):
            groups.setdefault(raw.strip(), []).append(c)
        for g in groups.values():
            if len(g) > 1:
                for c in g:
                    same_name[c] = g
    by_norm: dict[str, list[str]] = {}
    for c in cols:
        by_norm.setdefault(_norm(c), []).append(c)
    mapping: dict[str, str] = {}
    for canon, col in overrides.items():
        if canon not in CANONICAL:
            raise ScalePlanError(f"--col {canon}={col}: unknown column role {canon!r}; roles are "
                                 + ", ".join(CANONICAL))
        for part in col.split("+"):
            if part not in cols:
                raise ScalePlanError(f"{path}: --col {canon}={col}: no column {part!r}; columns are "
                                     + _names(cols))
        mapping[canon] = col
    used = {p for v in mapping.values() for p in v.split("+")}
    for canon in CANONICAL:
        if canon in mapping:
            continue
        hits = list(dict.fromkeys(by_norm[_norm(a)][0] for a in ALIASES[canon]
                                  if _norm(a) in by_norm and by_norm[_norm(a)][0] not in used))
        if hits:
            first = hits[0]
            twins = same_name.get(first) or (by_norm[_norm(first)] if len(by_norm[_norm(first)]) > 1 else None)
            if twins:
                exact = first in same_name
                what = (f"{len(twins)} columns are named {header[cols.index(first)].strip()!r}" if exact
                        else "columns " + ", ".join(map(repr, twins)) + " differ only in case or separators")
                picks = " or ".join(f"--col {canon}={t}" for t in twins[:2])
                raise ScalePlanError(f"{path}: {what} and would both be the {canon} column; pick one with {picks}"
                                     f"{' (pandas names the second ' + repr(twins[1]) + ')' if exact else ''}, "
                                     "or rename one")
            mapping[canon] = first
            used.add(first)
            others = sorted(set(hits[1:]))
            if others:
                warnings.append(f"column {first!r} used as {canon}; also matched {', '.join(map(repr, others))} "
                                f"(override with --col {canon}=COLUMN)")
    return mapping, warnings


def _names(cols) -> str:
    """Column names for a one-line message (a name with a newline or tab is quoted)."""
    return ", ".join(c if c.isprintable() else repr(c) for c in map(str, cols))


_PLAIN = r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*"


def _where(i: int, lines) -> str:
    return f"row {i + 1} (line {int(lines[i])})" if lines is not None else f"row {i + 1}"


_PLAIN_CHARS = np.zeros(129, dtype=bool)  # characters of a plain number (_PLAIN); 0 pads numpy's fixed-width text
_PLAIN_CHARS[[0, *map(ord, "0123456789+-.eE \t\n\r\f\v")]] = True
_PLAIN_MAX_LEN = 40  # longer cells take the cell-by-cell path


def _plain_numbers(obj: np.ndarray, missing: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Mask of the text cells of ``obj`` that are plain numbers (``_PLAIN``: sign, digits, point, exponent,
    surrounding white space) with a finite value, whose floats are written into ``out``. Vectorised: a cell made only
    of those characters, with a digit, is a plain number exactly when Python's ``float`` reads it, and gets the same
    float as the cell-by-cell parser (docs/fitting.md §1)."""
    import pandas as pd

    n = len(obj)
    mask = np.zeros(n, dtype=bool)
    cand = ~missing
    if pd.api.types.infer_dtype(obj[cand], skipna=False) != "string":
        cand &= np.fromiter((isinstance(v, str) for v in obj), dtype=bool, count=n)
    idx = np.flatnonzero(cand)
    if idx.size:
        idx = idx[np.fromiter(map(len, obj[idx]), dtype=np.intp, count=idx.size) <= _PLAIN_MAX_LEN]
    if not idx.size:
        return mask
    text = obj[idx].astype(str)
    if text.dtype.itemsize == 0:
        return mask
    codes = text.view(np.uint32).reshape(idx.size, -1)
    ok = _PLAIN_CHARS[np.minimum(codes, 128)].all(axis=1) & ((codes >= 48) & (codes <= 57)).any(axis=1)
    sel = idx[ok]
    try:
        vals = obj[sel].astype(float)
    except ValueError:  # a malformed cell among them (1.2.3): find it cell by cell
        vals = np.array([_float_or_nan(v) for v in obj[sel]], dtype=float)
    fin = np.isfinite(vals)
    out[sel[fin]] = vals[fin]
    mask[sel[fin]] = True
    return mask


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _parse_column(values, path: str, col: str, lines, *, grouping: bool = True) -> np.ndarray:
    """Parse one column to floats. NaN in the result marks a missing value (empty cell, JSON null, missing key);
    anything else that is not a finite number (text, ``nan``, ``inf``, a decimal comma) is a ScalePlanError
    naming the file, row, line and column."""
    import pandas as pd

    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        out = arr.astype(float)
        bad = np.flatnonzero(np.isinf(out))
        if bad.size:
            i = int(bad[0])
            raise ScalePlanError(f"{path}: {_where(i, lines)}, column {col!r}: {out[i]:g} is not a finite number; "
                                 "fix it, or leave the cell empty to drop the row")
        return out
    obj = arr if arr.dtype == object else arr.astype(object)
    out = np.full(len(arr), np.nan)
    missing = pd.isna(obj)
    plain = _plain_numbers(obj, missing, out)
    seen: dict[str, float] = {}  # a column of sizes repeats a few cells ("1.3B"): each text is parsed once
    for i in np.flatnonzero(~missing & ~plain):  # suffixes, separators, and what is not a number: cell by cell
        raw = arr[i]
        if isinstance(raw, str):
            if raw in seen:
                out[i] = seen[raw]
                continue
            if not raw.strip():
                continue  # blank cell: missing
        try:
            out[i] = parse_quantity(raw, grouping=grouping)
            if isinstance(raw, str):
                seen[raw] = out[i]
        except (ValueError, TypeError) as e:
            tail = ("fix it, or leave the cell empty to drop the row" if "finite" in str(e)
                    else "fix the cell or drop the row")
            msg = str(e) if isinstance(e, ValueError) else f"{raw!r} is not a number"
            raise ScalePlanError(f"{path}: {_where(i, lines)}, column {col!r}: {msg}; {tail}") from None
    return out


def load_runs(path: str | Path, columns: Mapping[str, str] | None = None, *, flops_unit: str = "flops",
              param_count: str = "total", loss_unit: str | None = None,
              log10: str | tuple[str, ...] | list[str] = (), where: str | None = None) -> RunTable:
    """Read a run log (CSV, TSV, JSON Lines, JSON array, Parquet) into a validated RunTable.

    ``where`` keeps the rows for which a condition over the file's column names holds (pandas query syntax, e.g.
    ``'dataset == "c4" and N > 1e8'``; :func:`scaling_planner.io.conditions.filter_rows`), recorded in ``derived``.
    One table per condition: :func:`load_run_groups`.

    ``columns`` overrides the alias mapping, e.g. ``{"loss": "my_loss"}``; ``{"run": "model+peak_lr"}`` joins
    several columns into one run id. ``flops_unit="pf-days"`` converts a compute column given in PF-days.
    ``param_count`` ("total" or "non-embedding") states what the N column counts.

    ``loss_unit``: "nats" (per token), "bits" (converted to nats: x ln 2) or "ppl" (perplexity, converted to nats:
    ln ppl). ``log10``: file columns (a tuple, or one comma-separated string) that hold log10 of N, D, C or the
    budget (converted with 10**x). Conversions are listed in ``RunTable.derived``.

    Numbers: cells may carry suffixes (1.3B) and thousands separators (1,000,000); a comma that is not a thousands
    separator (1,5e23, 3,4521) is an error, and loss cells never take thousands separators. Empty cells, JSON null
    and missing keys drop the row (counted in ``warnings``); ``nan``/``inf`` anywhere are errors.

    Sanity checks (each a ScalePlanError with the fix; thresholds are deliberately conservative):

    * loss, when ``loss_unit`` is not given: a median above 10 (LM losses are ~1.5-8 nats/token; a uniform guess
      over a 50k vocabulary is 10.8) reads as perplexity; a column named like ``ppl``/``perplexity`` or
      ``bits``/``bpb``/``bpc`` must state its unit. Pass ``loss_unit="nats"`` to use the column as it is.
    * N or D whose largest value is below 1e4, C or budget whose largest value is below 1e9 (after any PF-days
      conversion): not counts but log10 values, PF-days, or counts in millions/billions. Real N of 1e6-1e11 and
      real C of 1e15 and up are far from these limits.
    * a ``--log10`` column with a value above 100 is not log10 of a count.
    * run ids: a run's N is constant across its checkpoints, so a run id with more than one N is an error naming
      the id and columns that would tell its runs apart (``--col run=A+B``). Rows repeating a run's D with a
      different loss (several curves under one id) are an error above 10% of the rows and a warning below.
    """
    unit = _check_loss_unit(loss_unit)
    logs = _log10_names(log10)
    p, sha = _log_file(path)
    frame, lines, header = _read_frame(p, dict(columns or {}) if where is None else None)  # typed number columns
    if len(frame) == 0:
        raise ScalePlanError(f"{p}: no rows")
    note = None
    if where is not None:
        from .conditions import filter_rows

        frame, lines, note = filter_rows(frame, lines, where, str(p))
    mapping, warns = _map_columns(frame, dict(columns or {}), str(p), header)
    table = _table_from_frame(frame, mapping, source=p.name, sha=sha, flops_factor=flops_unit_factor(flops_unit),
                              param_count=param_count, lines=lines, warnings=warns, path=str(p), loss_unit=unit,
                              log10=logs)
    return table if note is None else _with_note(table, note)


def _log_file(path: str | Path) -> tuple[Path, str]:
    """The run log's path, checked to be a file, and its SHA-256 (recorded in the RunTable)."""
    p = Path(path)
    if not p.exists():
        raise ScalePlanError(f"{p}: no such file")
    if p.is_dir():
        raise ScalePlanError(f"{p}: is a directory; pass a run-log file")
    return p, hashlib.sha256(p.read_bytes()).hexdigest()


def _with_note(table: RunTable, note: str) -> RunTable:
    from dataclasses import replace

    return replace(table, derived=(note, *table.derived))


def load_run_groups(path: str | Path, columns: Mapping[str, str] | None = None, *, group_by: str | list[str],
                    where: str | None = None, flops_unit: str = "flops", param_count: str = "total",
                    loss_unit: str | None = None, log10: str | tuple[str, ...] | list[str] = ()):
    """One RunTable per condition: the rows of a run log (those where ``where`` holds) split by the values of the
    ``group_by`` columns (file column names: ``"dataset,warmup"`` or a list), each group read and validated as
    :func:`load_runs` reads a file (so run ids are checked within a group). Returns a
    :class:`~scaling_planner.io.conditions.RunGroups`: ``{name: RunTable}`` with names ``col=value`` joined by ``,``
    (``dataset=c4,warmup=long``), in the order the groups first appear. A group whose rows cannot be read is listed
    in ``RunGroups.skipped`` with the reason; when no group can be read, the first reason is the error."""
    from .conditions import RunGroups, filter_rows, parse_group_by, split_rows, take_rows

    by = parse_group_by(group_by)
    unit = _check_loss_unit(loss_unit)
    logs = _log10_names(log10)
    p, sha = _log_file(path)
    frame, lines, header = _read_frame(p)
    if len(frame) == 0:
        raise ScalePlanError(f"{p}: no rows")
    n_rows = len(frame)
    note = None
    if where is not None:
        frame, lines, note = filter_rows(frame, lines, where, str(p))
    mapping, warns = _map_columns(frame, dict(columns or {}), str(p), header)
    tables, skipped, keys = {}, {}, {}
    for name, (key, rows) in split_rows(frame, by, str(p)).items():
        keys[name] = key
        try:
            t = _table_from_frame(take_rows(frame, rows), mapping, source=p.name, sha=sha,
                                  flops_factor=flops_unit_factor(flops_unit), param_count=param_count,
                                  lines=None if lines is None else np.asarray(lines)[rows], warnings=list(warns),
                                  path=str(p), loss_unit=unit, log10=logs)
        except ScalePlanError as e:
            skipped[name] = str(e)
            continue
        tables[name] = t if note is None else _with_note(t, note)
    if not tables:
        name, why = next(iter(skipped.items()))
        rest = f"; {len(skipped) - 1} other group(s) failed too" if len(skipped) > 1 else ""
        raise ScalePlanError(f"group {name}: {why}{rest}")
    return RunGroups(tables, skipped=skipped, by=by, conditions=keys, where=where, rows=n_rows)


def _cell(frame, col: str, i: int) -> str:
    v = frame[col].iloc[i]
    if not isinstance(v, str) and _RAW_TEXT in frame.attrs:  # a typed CSV column: quote the file's own text
        v = frame.attrs[_RAW_TEXT](col, i)
    return repr(v.strip()) if isinstance(v, str) else f"{float(v):g}" if isinstance(v, (int, float, np.number)) \
        else repr(v)


def _table_from_frame(frame, mapping, *, source, sha, flops_factor, param_count, lines,
                      warnings=None, path=None, loss_unit=None, log10=()) -> RunTable:
    path = path or source
    if param_count not in PARAM_COUNTS:
        raise ScalePlanError(f"--param-count must be one of {', '.join(PARAM_COUNTS)}, got {param_count!r}")
    warnings = list(warnings or [])
    derived: list[str] = []
    n = len(frame)
    num: dict[str, np.ndarray] = {}
    parsed: dict[str, np.ndarray] = {}
    for canon in NUMERIC:
        if canon in mapping:
            col = mapping[canon]
            if col not in parsed:
                parsed[col] = _parse_column(frame[col].to_numpy(), path, col, lines, grouping=canon != "loss")
            num[canon] = parsed[col].copy()
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
    log_roles = _log10_roles(log10, mapping, frame, path)

    # Missing values (empty cells, null) drop the row with a count; the rest must be valid.
    used = [k for k in ("N", "D", "C", "loss") if k in num]
    missing = np.zeros(n, dtype=bool)
    for k in used:
        missing |= np.isnan(num[k])
    if missing.all():
        raise ScalePlanError(f"{path}: every row has a missing value in "
                             + ", ".join(dict.fromkeys(mapping[k] for k in used)) + "; nothing to use")
    if missing.any():
        warnings.append(f"dropped {int(missing.sum())} row(s) with missing values in "
                        + ", ".join(dict.fromkeys(mapping[k] for k in used)))
    for k in used + [k for k in ("step", "budget", "U", "epochs") if k in num]:
        if k in log_roles:
            continue  # log10 values may be <= 0; checked after the conversion
        vals = num[k]
        bad = ~missing & ~np.isnan(vals) & (vals < 0 if k == "step" else vals <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScalePlanError(f"{path}: {_where(i, lines)}, column {mapping[k]!r}: value "
                                 f"{_cell(frame, mapping[k], i)} must be finite and {'>= 0' if k == 'step' else '> 0'}"
                                 "; fix or remove the row" + (f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else ""))

    # Unit conversions, each recorded in `derived`.
    for k in log_roles:
        col = mapping[k]
        vals = num[k]
        big = ~np.isnan(vals) & (np.abs(vals) > LOG10_MAX)
        if big.any():
            i = int(np.flatnonzero(big)[0])
            raise ScalePlanError(f"{path}: --log10 {col}: {_where(i, lines)} holds {_cell(frame, col, i)}, not a log10 "
                                 f"value (log10 of a count is below {LOG10_MAX:g}); drop --log10 {col}")
        with np.errstate(over="ignore"):
            num[k] = np.power(10.0, vals)
        derived.append(f"{k} = 10**{col} (--log10)")
    _convert_loss(num, mapping["loss"], loss_unit, missing, frame, lines, path, derived)
    if "C" in num and flops_factor != 1.0:  # also when C was copied from the (still unconverted) budget column
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

    keep = ~missing
    for k in num:
        num[k] = num[k][keep]
    run = run[keep]
    kept_frame = frame[keep] if not keep.all() else frame
    for k in ("N", "D", "C", "budget"):
        if k in num and not (k == "C" and mapping["C"] == mapping.get("budget")):
            _check_counts(k, num[k], mapping[k], path, flops_factor, k in log_roles)

    # Derive the missing quantity with C = 6 N D (floats: N*D overflows int64 for real runs).
    with np.errstate(over="ignore", divide="ignore"):
        _derive(num, derived)
    for k in ("N", "D", "C", "budget"):
        if k in num:
            vals = num[k]
            bad = ~((np.isfinite(vals) & (vals > 0)) | (np.isnan(vals) if k == "budget" else False))
            if bad.any():
                i = int(np.flatnonzero(keep)[np.flatnonzero(bad)[0]])
                how = next((d.split(" (")[0] for d in derived if d.startswith(f"{k} = ")), f"{k} after conversion")
                raise ScalePlanError(f"{path}: {_where(i, lines)}: {how} is out of range for a float ({vals[bad][0]:g});"
                                     " check the units of N, D and C in that row")
    if "U" not in num and "epochs" in num:  # unique tokens from the epoch count (Muennighoff et al. 2023: D/U epochs)
        num["U"] = num["D"] / num["epochs"]
        derived.append(f"U = D/{mapping['epochs']} (unique tokens from the epoch count)")
    if "run" in mapping:
        warnings += _check_run_ids(run, num, mapping, kept_frame, path)

    import pandas as pd

    key = {"N": num["N"], "D": num["D"], "loss": num["loss"]}
    if "run" in mapping:
        key["run"] = pd.factorize(run)[0]
    dups = int(pd.DataFrame(key).duplicated().sum())  # rows equal to an earlier row (hashed, not sorted)
    if dups:
        warnings.append(f"{dups} duplicate row(s) (same run, N, D and loss)")

    return RunTable(N=num["N"], D=num["D"], C=num["C"], loss=num["loss"], run=run, step=num.get("step"),
                    budget=num.get("budget"), U=num.get("U"), source=source, sha256=sha, param_count=param_count,
                    columns={k: v for k, v in mapping.items()}, derived=tuple(derived), warnings=tuple(warnings))


def _derive(num: dict[str, np.ndarray], derived: list[str]) -> None:
    """Derive the missing one of N, D, C with C = 6·N·D (floats: N*D overflows int64 for real runs)."""
    if "C" not in num:
        num["C"] = 6.0 * num["N"] * num["D"]
        derived.append("C = 6·N·D (no compute column)")
    elif "D" not in num:
        num["D"] = num["C"] / (6.0 * num["N"])
        derived.append("D = C/(6·N) (no token column)")
    elif "N" not in num:
        num["N"] = num["C"] / (6.0 * num["D"])
        derived.append("N = C/(6·D) (no parameter column)")


def _log10_roles(log10, mapping, frame, path) -> list[str]:
    """The roles (N, D, C, budget) whose column is named in ``log10`` (a file column, or a role name)."""
    cols = [str(c) for c in frame.columns]
    roles: list[str] = []
    for name in log10:
        col = name if name in cols else mapping.get(name) if name in ("N", "D", "C", "budget") else None
        if col is None:
            raise ScalePlanError(f"{path}: --log10 {name}: no column {name!r}; columns are " + _names(cols))
        hit = [k for k in ("N", "D", "C", "budget") if mapping.get(k) == col]
        if not hit:
            role = next((k for k, v in mapping.items() if col in v.split("+")), None)
            what = f"it is the {role} column" if role else "it is not used"
            raise ScalePlanError(f"{path}: --log10 {name}: column {col!r} is not an N, D, C or budget column "
                                 f"({what}); --log10 converts counts only")
        roles += [k for k in hit if k not in roles]
    return roles


def _convert_loss(num, col, loss_unit, missing, frame, lines, path, derived) -> None:
    loss = num["loss"]
    ok = ~missing
    if loss_unit is None:
        name = str(col).lower()
        if "ppl" in _norm(col) or "perplexity" in name:
            raise ScalePlanError(f"{path}: loss column {col!r} looks like perplexity by its name; pass --loss-unit "
                                 "ppl (or --loss-unit nats if it is a loss in nats)")
        if re.search(r"(?<![a-z])(bits?|bpb|bpc|bpt|bpd)(?![a-z])", name):
            raise ScalePlanError(f"{path}: loss column {col!r} looks like bits by its name; pass --loss-unit bits "
                                 "(or --loss-unit nats if it is a loss in nats)")
        med = float(np.median(loss[ok]))
        if med > LOSS_MEDIAN_MAX:
            raise ScalePlanError(f"{path}: loss column {col!r} has median {med:.3g}, too high for a loss in nats per "
                                 "token (1.5-8 is typical): looks like perplexity; pass --loss-unit ppl (or "
                                 "--loss-unit nats if it really is nats)")
    elif loss_unit == "bits":
        num["loss"] = loss * np.log(2.0)
        derived.append(f"loss = {col} x ln 2 (bits to nats, --loss-unit bits)")
    elif loss_unit == "ppl":
        low = ok & (loss <= 1.0)
        if low.any():
            i = int(np.flatnonzero(low)[0])
            raise ScalePlanError(f"{path}: {_where(i, lines)}, column {col!r}: perplexity {_cell(frame, col, i)} must "
                                 "be > 1 (--loss-unit ppl); is the column a loss in nats? then drop --loss-unit ppl")
        num["loss"] = np.log(loss)
        derived.append(f"loss = ln({col}) (perplexity to nats, --loss-unit ppl)")


def _check_counts(k: str, vals: np.ndarray, col: str, path: str, flops_factor: float, was_log10: bool) -> None:
    """N, D, C or budget values too small to be counts: say what they probably are."""
    vals = vals[np.isfinite(vals)]
    if not vals.size or vals.max() >= COUNT_MAX_BELOW[k]:
        return
    lo, hi = float(vals.min()), float(vals.max())
    lo_l, hi_l = _LOG10_RANGE[k]
    name = str(col).lower()
    looks_log = lo_l <= lo and hi <= hi_l
    what = _ROLE_WORDS[k]
    head = (f"{path}: column {col!r} ({k}) has values {lo:.4g} to {hi:.4g}, far too small for {what} (the largest "
            f"is below {COUNT_MAX_BELOW[k]:.0e})")
    if was_log10:
        hint = "even after --log10; check the column's unit"
    elif k in ("C", "budget"):
        pf = flops_factor != 1.0
        if "log" in name:
            hint = f"looks like log10 FLOPs; pass --log10 {col}"
        elif pf:
            hint = "even as PF-days; check the column's unit"
        elif "pf" in name or "day" in name or not looks_log:
            hint = "looks like PF-days; pass --flops-unit pf-days (or write FLOPs in full, e.g. 3e21)"
        else:
            hint = f"looks like log10 FLOPs (pass --log10 {col}) or PF-days (pass --flops-unit pf-days)"
    else:
        unit = "billions" if k == "N" else "billions or trillions"
        ex = "350M, 1.3B" if k == "N" else "300M, 1.4T"
        if "log" in name:
            hint = f"looks like log10 {what}; pass --log10 {col}"
        elif looks_log:
            hint = f"looks like log10 {what} (pass --log10 {col}) or {what} in {unit} (write them as {ex})"
        else:
            hint = f"looks like {what} in millions or {unit}; write them in full or with a suffix ({ex})"
    raise ScalePlanError(f"{head}: {hint}")


def _run_problems(run: np.ndarray, N: np.ndarray, D: np.ndarray, loss: np.ndarray):
    """(ids with several N, rows repeating a run's D with a different loss, an example of each)."""
    import pandas as pd

    codes, ids = pd.factorize(np.asarray(run))  # ids in order of first appearance; grouped as integers below
    df = pd.DataFrame({"run": codes, "N": N, "D": D, "loss": loss})
    g = df.groupby("run", sort=False)["N"]
    spread = (g.max() > g.min() * (1 + 1e-6)).to_numpy()
    multi = [str(ids[i]) for i in np.flatnonzero(spread)]
    nl = df.groupby(["run", "D"], sort=False)["loss"].nunique()
    extra = nl[nl > 1]
    example = None
    if len(extra):
        r, d = extra.index[0]
        example = (str(ids[r]), d)
    return multi, int((extra - 1).sum()), example


def _check_run_ids(run, num, mapping, frame, path) -> list[str]:
    runcol = mapping["run"]
    multi, extra, example = _run_problems(run, num["N"], num["D"], num["loss"])
    n = len(run)
    if not multi and extra <= MERGED_FRACTION * n:
        if extra:
            return [f"{extra} row(s) repeat a run's D with a different loss (e.g. run {example[0]!r} at "
                    f"D={example[1]:.4g}): several curves share a run id? add a column with --col run={runcol}+..."]
        return []
    bad_id = multi[0] if multi else example[0]
    cands = _run_candidates(frame, run, num, mapping, bad_id)
    fix = (f"join columns into the run id with --col run={runcol}+{'+'.join(cands)}" if cands
           else "name the columns that identify a run with --col run=A+B")
    if multi:
        Ns = np.unique(np.round(num["N"][run == bad_id], 6 - int(np.floor(np.log10(num["N"][run == bad_id].max())))))
        shown = ", ".join(f"{v:.4g}" for v in Ns[:3]) + (", ..." if len(Ns) > 3 else "")
        ids = len(np.unique(run))
        scope = f" ({len(multi)} of {ids} run ids have several N)" if len(multi) > 1 else ""
        raise ScalePlanError(f"{path}: run id {bad_id!r} (column {runcol!r}) has {len(Ns)} different N values "
                             f"({shown}), but a run's N is constant across its checkpoints{scope}; {fix}")
    raise ScalePlanError(f"{path}: run ids from column {runcol!r} merge several training curves: {extra} of {n} rows "
                         f"repeat a run's D with a different loss (e.g. run {bad_id!r} at D={example[1]:.4g}); {fix}")


def _run_candidates(frame, run, num, mapping, bad_id, max_cols: int = 3) -> list[str]:
    """Columns that, joined to the run id, best fix its problems (greedy; at most ``max_cols``).

    Candidates vary within ``bad_id``; per-checkpoint columns (step counters, fractions of training done: joining
    one leaves most runs with a single row) are skipped. Ties go to fewer runs, then to text columns."""
    import pandas as pd

    taken = {p for v in mapping.values() for p in str(v).split("+")}
    n = len(run)
    in_bad = run == bad_id
    pool = []
    for c in map(str, frame.columns):
        if c in taken or "+" in c or not c.isprintable():
            continue
        vals = frame[c].fillna("").astype(str).to_numpy().astype(str)
        k = len(np.unique(vals))
        if 1 < k <= max(2, n // 2) and len(np.unique(vals[in_bad])) > 1:
            numeric = bool(pd.to_numeric(frame[c], errors="coerce").notna().all())
            pool.append((c, vals.astype(object), numeric))

    def score(key):
        multi, extra, _ = _run_problems(key, num["N"], num["D"], num["loss"])
        _, counts = np.unique(key, return_counts=True)
        return len(multi) * n + extra, len(counts), float(np.mean(counts == 1))

    chosen: list[str] = []
    key = run.astype(object)
    best, _, single = score(run.astype(str))
    limit = max(0.5, single)
    while pool and len(chosen) < max_cols and best > MERGED_FRACTION * n:
        trials = []
        for i, (_c, vals, numeric) in enumerate(pool):
            s, groups, singles = score((key + "|" + vals).astype(str))
            if singles <= limit or n < 20:  # too few rows to tell a run label from a per-checkpoint column
                trials.append((s, groups, numeric, i))
        if not trials:
            break
        s, _, _, i = min(trials)
        if s >= best:
            break
        c, vals, _ = pool.pop(i)
        chosen.append(c)
        key, best = key + "|" + vals, s
    return chosen
