import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EPOCH_CSV = EXAMPLES / "epoch_chinchilla" / "chinchilla_points.csv"


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the scaleplan entry point in-process; returns (exit_code, stdout, stderr)."""
    from scaling_planner.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["scaleplan", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run


def pytest_report_header(config):
    """Say which CLI-library versions the suite ran with (typer >= 0.29 vendors click; older typer uses it)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"scaleplan CLI stack: typer {v('typer')}, click {v('click')}, rich {v('rich')}"


_MUTATION = None


def pytest_configure(config):
    """With SCALEPLAN_MUTATION=NAME, stub out one mechanism before any test runs (``python -m tests.mutations``)."""
    global _MUTATION
    name = os.environ.get("SCALEPLAN_MUTATION")
    if name:
        from tests.mutations import apply

        _MUTATION = pytest.MonkeyPatch()
        apply(name, _MUTATION)


def pytest_unconfigure(config):
    if _MUTATION is not None:
        _MUTATION.undo()
