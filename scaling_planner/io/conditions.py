"""Conditions in one run log: a row filter (``where``, pandas query syntax) and a split into groups (``group_by``),
both over the file's own column names, before the rows become RunTables (docs/fitting.md §3.8).

Real logs hold many conditions in one file (Porian et al. 2024: 15 by data set, warm-up, decay, hyper-parameters
and parameter counting; Gadre et al. 2024: three data sets). ``where`` keeps the rows of one; ``group_by`` makes one
table per condition. Used by :func:`scaling_planner.io.runlog.load_runs` (``where=``) and
:func:`scaling_planner.io.runlog.load_run_groups`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import ScalePlanError

MAX_GROUPS = 60  # scaleplan: more groups than this means a column of values (a run id, N), not of conditions
MISSING = "(empty)"  # the group value of an empty cell


class RunGroups(dict):
    """``{group name: RunTable}`` in the order the groups first appear in the file, plus ``skipped`` (groups whose
    rows could not be read as a run log: name -> reason), ``by`` (the grouping columns), ``conditions`` (name ->
    {column: value}, every group's, skipped ones too) and ``where`` (the row filter, or None)."""

    def __init__(self, tables=(), *, skipped=None, by=(), conditions=None, where=None, rows=0):
        super().__init__(tables)
        self.skipped: dict[str, str] = dict(skipped or {})
        self.by: tuple[str, ...] = tuple(by)
        self.conditions: dict[str, dict[str, str]] = dict(conditions or {})
        self.where: str | None = where
        self.rows: int = rows  # rows of the file before any filter


def _names(cols) -> str:
    return ", ".join(c if c.isprintable() else repr(c) for c in map(str, cols))


def _did_you_mean(name: str, cols) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(map(str, cols)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _typed(frame):
    """The frame with each column that holds only plain numbers (or empty cells) as floats, so ``N > 1e8`` compares
    numbers; other columns stay text."""
    import pandas as pd

    out = frame.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype.kind in "iufb":
            continue
        num = pd.to_numeric(col, errors="coerce")
        if bool(num.notna().sum() == col.notna().sum()) and col.notna().any():
            out[c] = num
    return out


def _mentioned(expr: str, cols) -> list[str]:
    """Columns named in ``expr`` (as a word or in backticks)."""
    found = []
    for c in map(str, cols):
        if f"`{c}`" in expr or re.search(rf"(?<![\w.`]){re.escape(c)}(?![\w`])", expr):
            found.append(c)
    return found


def filter_rows(frame, lines, where: str, path: str):
    """(frame, lines, note): the rows of ``frame`` for which ``where`` is true (pandas ``DataFrame.eval`` syntax over
    the file's column names, e.g. ``dataset == "c4" and N > 1e8``; names with spaces in backticks), the file line of
    each kept row, and a note for ``RunTable.derived``. A bad expression, an unknown column, a result that is not a
    condition, or no row left is a one-line ScalePlanError naming the file and the expression."""
    expr = str(where).strip()
    head = f"{path}: --where {expr!r}"
    if not expr:
        raise ScalePlanError(f"{path}: --where is empty; give a condition such as 'dataset == \"c4\"'")
    cols = [str(c) for c in frame.columns]
    typed = _typed(frame)
    try:
        mask = typed.eval(expr, local_dict={}, global_dict={})
    except SyntaxError as e:
        hint = " (compare with ==, not =)" if re.search(r"(?<![=!<>])=(?!=)", expr) else ""
        raise ScalePlanError(f"{head}: not a valid condition ({e.msg}){hint}; use pandas query syntax, e.g. "
                             "dataset == \"c4\" and N > 1e8") from None
    except Exception as e:  # pandas raises many types here: name, type, value errors
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        name = re.search(r"name '([^']+)' is not defined", msg)
        if name:
            raise ScalePlanError(f"{head}: no column {name.group(1)!r}{_did_you_mean(name.group(1), cols)}; columns "
                                 f"are {_names(cols)} (write a name with "
                                 "spaces or symbols in backticks: `Model Size` > 1e9)") from None
        if "local variable" in msg:
            raise ScalePlanError(f"{head}: @variables are not available; write the value itself") from None
        if "assign" in msg:
            raise ScalePlanError(f"{head}: compare with ==, not =") from None
        raise ScalePlanError(f"{head}: cannot evaluate it ({msg}); text values need quotes "
                             "(dataset == \"c4\") and numbers none (N > 1e8)") from None
    import pandas as pd

    if isinstance(mask, pd.DataFrame):  # "col = value" assigns a column
        raise ScalePlanError(f"{head}: compare with ==, not =")
    if isinstance(mask, (bool, np.bool_)):
        mask = pd.Series(bool(mask), index=frame.index)
    if not isinstance(mask, pd.Series) or len(mask) != len(frame) or mask.dtype.kind != "b":
        raise ScalePlanError(f"{head}: is not a condition (true or false for each row); e.g. dataset == \"c4\" or "
                             "N > 1e8")
    keep = mask.to_numpy(dtype=bool)
    n = len(frame)
    if not keep.any():
        shown = []
        for c in _mentioned(expr, cols):
            vals = list(dict.fromkeys(frame[c].dropna().astype(str)))
            if len(vals) <= 12:
                shown.append(f"{c} has {', '.join(map(repr, vals))}")
        raise ScalePlanError(f"{head} matches none of the {n} rows" + (f" ({'; '.join(shown)})" if shown else "")
                             + "; check the values and quotes")
    rows = np.flatnonzero(keep)
    return (take_rows(frame, rows), None if lines is None else np.asarray(lines)[rows],
            f"rows where {expr}: {rows.size} of {n}")


def take_rows(frame, rows):
    """``frame.iloc[rows]`` numbered from 0, with what ``frame.attrs`` says about its rows (a typed CSV read's lookup
    of a cell's text in the file, ``runlog._RAW_TEXT``: (column, row) -> text) still pointing at the same file rows,
    so that messages quote the right cell."""
    rows = np.asarray(rows)
    out = frame.iloc[rows].reset_index(drop=True)
    from . import runlog

    key = getattr(runlog, "_RAW_TEXT", None)
    lookup = frame.attrs.get(key) if key is not None else None
    if callable(lookup):
        out.attrs[key] = lambda col, i, _f=lookup, _r=rows: _f(col, int(_r[i]))
    return out


def parse_group_by(group_by) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` -> ("a", "b")."""
    if isinstance(group_by, str):
        group_by = group_by.split(",")
    cols = tuple(dict.fromkeys(str(c).strip() for c in (group_by or ()) if str(c).strip()))
    if not cols:
        raise ScalePlanError("--group-by is empty; name one or more columns, e.g. --group-by dataset,warmup")
    return cols


def _value(v) -> str:
    """A group value as text: 0.001, 64, c4 (floats without a trailing .0)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return MISSING
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v).strip() or MISSING


def group_name(keys: dict[str, str]) -> str:
    """``col=value`` joined by ``,`` (``dataset=c4,warmup=long``)."""
    return ",".join(f"{c}={v}" for c, v in keys.items())


def group_slug(name: str) -> str:
    """A file-name-safe form of a group name: ``dataset=c4,warmup=long`` -> ``dataset-c4_warmup-long``."""
    parts = []
    for part in name.split(","):
        col, _, val = part.partition("=")
        parts.append("-".join(re.sub(r"[^A-Za-z0-9.+]+", "-", s).strip("-.") or "x" for s in (col, val)))
    return "_".join(parts)


def split_rows(frame, by: Sequence[str], path: str) -> dict[str, tuple[dict[str, str], np.ndarray]]:
    """``{group name: ({column: value}, row indices)}`` in order of first appearance. Unknown columns and columns
    of values rather than conditions (more than ``MAX_GROUPS`` groups, or fewer than two rows per group on average)
    are one-line ScalePlanErrors."""
    cols = [str(c) for c in frame.columns]
    for c in by:
        if c not in cols:
            raise ScalePlanError(f"{path}: --group-by {c}: no column {c!r}{_did_you_mean(c, cols)}; columns are {_names(cols)}")
    labels = np.array([group_name({c: _value(v) for c, v in zip(by, row)})
                       for row in zip(*(frame[c].to_numpy() for c in by))], dtype=object)
    names, first, inv = np.unique(labels.astype(str), return_index=True, return_inverse=True)
    if len(names) > MAX_GROUPS or (len(names) > 1 and len(names) > len(frame) / 2):
        counts = {c: frame[c].nunique(dropna=False) for c in by}
        worst = max(counts, key=counts.get)
        raise ScalePlanError(f"{path}: --group-by {','.join(by)} makes {len(names)} groups of {len(frame)} rows "
                             f"(column {worst!r} has {counts[worst]} distinct values), too few rows each to fit; group "
                             f"by columns that name conditions (at most {MAX_GROUPS} groups), or select rows with "
                             "--where")
    out = {}
    for j in np.argsort(first):
        rows = np.flatnonzero(inv == j)
        i0 = int(rows[0])
        out[str(names[j])] = ({c: _value(frame[c].iloc[i0]) for c in by}, rows)
    return out
