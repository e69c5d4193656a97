"""Mutations of the fitting mechanisms; see tests/mutations/__init__.py."""

from __future__ import annotations

from . import Mutation

MUTATIONS: list[Mutation] = []
