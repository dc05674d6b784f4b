"""The ``sua-audit`` command line. ``main()`` is the one place that turns errors into exit codes.

| exit | meaning |
| ---- | ------- |
| 0 | the command succeeded |
| 1 | a gate failed (``gate``, later) |
| 2 | usage, configuration or dataset error; nothing was written |
| 3 | the audit could not complete (model, cache); finished requests stay cached |
| 130 | interrupted (Ctrl-C); finished requests stay cached, rerun to resume |
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from sua_audit import __version__
from sua_audit.errors import EXIT_INTERRUPTED, SuaAuditError

app = typer.Typer(
    name="sua-audit",
    help="Audit language models for answers that flip under meaning-preserving rewrites while "
    "the model stays confident (Sensitivity–Uncertainty Alignment).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sua-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    log_level: str = typer.Option(
        "WARNING", "--log-level", envvar="SUA_AUDIT_LOG_LEVEL", help="Logging level on stderr."
    ),
) -> None:
    """Audit language models with Sensitivity–Uncertainty Alignment (SUA = S − λH)."""
    from rich.logging import RichHandler

    from sua_audit.ui.console import err_console

    logging.basicConfig(
        level=log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    # transformers' own progress bars and advisory warnings would drown the audit's output.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


from sua_audit.cli import backends as _backends  # noqa: E402,F401  (registers the commands)
from sua_audit.cli import evaluate as _evaluate  # noqa: E402,F401
from sua_audit.cli import perturbations as _perturbations  # noqa: E402,F401
from sua_audit.cli import report as _report  # noqa: E402,F401
from sua_audit.cli import run as _run  # noqa: E402,F401
from sua_audit.cli import train as _train  # noqa: E402,F401


def main() -> None:
    """Entry point: run the app, mapping sua-audit errors to exit codes without tracebacks."""
    debug = os.environ.get("SUA_AUDIT_DEBUG") == "1"
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except SuaAuditError as exc:
        if debug:
            raise
        from rich.markup import escape

        from sua_audit.ui.console import err_console

        # One line per problem, never wrapped: CI logs and grep read these.
        for line in str(exc).splitlines() or [""]:
            err_console.print(
                f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True
            )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        from sua_audit.ui.console import err_console

        err_console.print(
            "interrupted: finished requests are in the cache; rerun the same command to resume."
        )
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.exceptions.Abort):
            sys.exit(EXIT_INTERRUPTED)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
