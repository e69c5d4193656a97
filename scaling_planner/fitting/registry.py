"""The fitting methods, in the order ``fit`` runs them. Adding a method: a new module that declares a
:class:`~.spec.MethodSpec`, and one line here.

Everything that depends on the method (which points it sees, the law it produces, its figure, its help line) is read
from here through :func:`get`, at call time, so a test can swap a spec (``monkeypatch.setitem(REGISTRY, ...)``).
"""

from __future__ import annotations

from . import approach1, approach2, approach3, data_constrained, kaplan
from .spec import MethodSpec

REGISTRY: dict[str, MethodSpec] = {s.name: s for s in (
    kaplan.SPEC_N,
    kaplan.SPEC_D,
    kaplan.SPEC_C,
    kaplan.SPEC_ND,
    approach1.SPEC,
    approach2.SPEC,
    approach3.SPEC,
    data_constrained.SPEC,
)}


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str) -> MethodSpec | None:
    """The spec of method ``name``, or None for a name no method has."""
    return REGISTRY.get(name)


def primary_order() -> tuple[str, ...]:
    """Method names, most preferred first (the primary fit of a FitReport)."""
    return tuple(sorted(REGISTRY, key=lambda m: REGISTRY[m].primary_rank))


def help_text() -> str:
    """One line per method for the CLI's ``--method`` help."""
    return "; ".join(f"{s.name} ({s.description})" for s in REGISTRY.values())
