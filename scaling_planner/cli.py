"""The ``scaleplan`` command line: a thin typer layer that parses, calls the core, and renders.

Heavy libraries (pandas, scipy, matplotlib) are imported inside the commands, never at start-up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from . import __version__
from .errors import ScalePlanError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Plan language-model training from scaling laws: fit laws to run logs, pick N and D for a "
                       "compute budget, check memory, parallel layout, time and cost.")
laws_app = typer.Typer(add_completion=False, help="The catalogue of published scaling laws.",
                       invoke_without_command=True)
app.add_typer(laws_app, name="laws")


def _version(value: bool):
    if value:
        print(f"scaleplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    pass


def emit_json(obj) -> None:
    """--json mode: the JSON object and nothing else on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _num(text: str | None, what: str) -> float | None:
    from .units import parse_positive

    return None if text is None else parse_positive(text, what)


# ------------------------------------------------------------------------------------------------ laws
@laws_app.callback()
def laws_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """List the catalogue (name, form, exponents, source). `scaleplan laws show NAME` prints one law."""
    if ctx.invoked_subcommand is not None:
        return
    from .laws import list_laws
    from .render import laws_table

    laws = list_laws()
    if as_json:
        emit_json([{"name": law.name, "form": law.form, "title": law.title, "params": dict(law.params),
                    "exponents": law.exponents(), "citation": dict(law.citation)} for law in laws])
    else:
        console().print(laws_table(laws))


@laws_app.command("show")
def laws_show(name: str = typer.Argument(..., help="Catalogue name (see `scaleplan laws`) or a law JSON file."),
              flops: str | None = typer.Option(None, "--flops", help="Compute budget C in FLOPs (e.g. 1e23)."),
              params: str | None = typer.Option(None, "--params", help="Parameters N (e.g. 7e9 or 7B)."),
              tokens: str | None = typer.Option(None, "--tokens", help="Training tokens D (e.g. 1.4T)."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Print one law in full; with --flops the compute-optimal allocation, with --params [--tokens] the loss."""
    from .laws import load_law
    from .render import law_panel

    law = load_law(name)
    C = _num(flops, "--flops")
    N = _num(params, "--params")
    D = _num(tokens, "--tokens")
    if C is not None and (N is not None or D is not None):
        raise ScalePlanError("give either --flops (for the optimal allocation) or --params/--tokens (for a loss)")
    if C is None and N is None and D is not None:
        raise ScalePlanError("--tokens needs --params too (or use --flops)")
    out = {"name": law.name, "form": law.form, "law_params": dict(law.params), "flops": C, "params": None,
           "tokens": None, "tokens_per_param": None, "loss": None, "exponents": law.exponents()}
    if C is not None:
        Nopt, Dopt = law.optimal(C)
        out.update(params=Nopt, tokens=Dopt, tokens_per_param=Dopt / Nopt,
                   loss=law.loss(Nopt, Dopt) if law.has_loss else None)
    elif N is not None:
        out.update(params=N, tokens=D, tokens_per_param=(D / N) if D else None,
                   loss=law.loss(N, D) if law.has_loss else None, flops=(6 * N * D) if D else None)
    if as_json:
        emit_json(out)
    else:
        console().print(law_panel(law, out))


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback, for bad input."""
    try:
        app(standalone_mode=False)
    except ScalePlanError as e:
        console(stderr=True).print(f"[bold red]error:[/] {e}", soft_wrap=True, markup=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code or 0)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            console(stderr=True).print(f"[bold red]error:[/] {e}", soft_wrap=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
