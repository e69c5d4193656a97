"""Mutation checks: each entry stubs out one mechanism of scaleplan (a profile fact, an activation term, the layout
score, a ZeRO stage's sharding, a fitting method's point selection) and names the test files that must catch it.

Run them all (each in a fresh pytest process; a mutation "survives" when its tests still pass)::

    python -m tests.mutations            # every mutation
    python -m tests.mutations hf.norm    # the ones whose name contains "hf.norm"

A plain ``pytest`` run applies no mutation. With ``SCALEPLAN_MUTATION=NAME`` set, ``tests/conftest.py`` applies
mutation NAME before the tests run (that is how the runner uses it).

Entries live beside the area they mutate: :mod:`.memory`, :mod:`.planner`, :mod:`.fitting`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the mechanism that is stubbed out, in words
    apply: Callable  # apply(monkeypatch): patch scaleplan in place
    tests: tuple[str, ...]  # test files (relative to the repo root) that must fail under it


def all_mutations() -> dict[str, Mutation]:
    from . import emit, fitting, memory, planner, solve, steptime

    out: dict[str, Mutation] = {}
    for mod in (memory, planner, fitting, steptime, emit, solve):
        for m in mod.MUTATIONS:
            if m.name in out:
                raise ValueError(f"duplicate mutation name {m.name}")
            out[m.name] = m
    return out


def apply(name: str, monkeypatch) -> None:
    muts = all_mutations()
    if name not in muts:
        raise KeyError(f"unknown mutation {name!r}; known: {', '.join(muts)}")
    muts[name].apply(monkeypatch)
