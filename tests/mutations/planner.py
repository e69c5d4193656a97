"""Mutations of the planner mechanisms; see tests/mutations/__init__.py."""

from __future__ import annotations

from . import Mutation


def _constant_throughput(mp):
    import scaling_planner.planner as planner

    mp.setattr(planner, "throughput", lambda *a, **k: (1.0, {"tp_comm": 0.0, "pp_bubble": 0.0, "pp_comm": 0.0,
                                                            "dp_comm_exposed": 0.0, "recompute": 0.0}))


MUTATIONS: list[Mutation] = [
    Mutation("planner.throughput.constant", "layout throughput model returns 1 for every layout",
             _constant_throughput, ("tests/test_planner.py",)),
]
