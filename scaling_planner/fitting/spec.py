"""What a fitting method declares about itself: one :class:`MethodSpec` per method, in the method's own module.

The registry (:mod:`.registry`) lists the specs; ``fit``, ``fit_method``, the holdout check, ``FitResult.to_law``,
the report, the figures, the terminal view and the CLI help read them instead of testing method names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

POINTS = {
    "final": "each run's last checkpoint (the final loss of a run trained to that length)",
    "all": "every row, checkpoints included",
    "curves": "every row, read as per-run learning curves",
}


@dataclass(frozen=True)
class FigureSpec:
    """A report figure of a method's fit.

    ``function`` names a function of :mod:`scaling_planner.render.report.plots` (named, not imported, so that the
    core never imports matplotlib). It takes one FitResult, or, with ``combined``, the list of every converged fit
    that shares this FigureSpec (one figure with a panel each, e.g. the Kaplan single-variable laws).
    ``title`` and ``key`` (anchor / file stem) default to "METHOD fit figure" and the method name."""

    function: str
    caption: str
    combined: bool = False
    title: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class MethodSpec:
    """One fitting method.

    * ``fit(table, **options) -> FitResult`` fits the points the method sees; it takes ``bootstrap``, ``seed``,
      ``progress`` and the ``fit()`` options named in ``options`` (``offset``, ``loss``, ``delta``, ``asymmetry``,
      ``at_flops``, ``budget_tol``).
    * ``law_form``: the :class:`~scaling_planner.laws.ScalingLaw` form its fit becomes (``laws.FORMS``); with form
      ``power``, ``variable`` is N, D or C and ``params_map`` renames the fit's params to the law's.
    * ``points``: which rows of a table with learning curves it sees: ``final``, ``all`` or ``curves`` (:data:`POINTS`);
      ``curves`` methods are skipped (when not asked for by name) on tables without curves.
    * ``figure``: its report figure, or None; ``frontier``: drawn on the report's compute-optimal N/D figure.
    * ``robust_objective``: fitted with the robust objective on log loss (``loss``/``delta``), not log-log least
      squares (said in the views' header).
    * ``primary_rank``: lower is preferred as the report's and ``--save``'s primary fit.
    * ``notes(result) -> list[str]``: diagnostic lines the views print under the method's table.
    * ``description``: one line for the CLI help.
    """

    name: str
    fit: Callable
    law_form: str
    points: str
    description: str
    options: tuple[str, ...] = ()
    variable: str | None = None
    params_map: tuple[tuple[str, str], ...] = ()
    figure: FigureSpec | None = None
    frontier: bool = False
    robust_objective: bool = False
    primary_rank: int = 99
    notes: Callable | None = None

    def __post_init__(self):
        if self.points not in POINTS:
            raise ValueError(f"{self.name}: points must be one of {', '.join(POINTS)}, got {self.points!r}")

    @property
    def needs_curves(self) -> bool:
        return self.points == "curves"

    def select(self, table):
        """The rows of ``table`` this method fits (see ``points``)."""
        return table.final() if self.points == "final" and table.has_curves else table
