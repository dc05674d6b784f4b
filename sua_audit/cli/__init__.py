"""The ``sua-audit`` command line. ``main()`` is the one place that turns errors into exit codes.

| exit | meaning |
| ---- | ------- |
| 0 | the command succeeded |
| 1 | a gate failed (``gate``, later) |
| 2 | usage, configuration or dataset error, unwritable output; nothing was written, no call made |
| 3 | the audit could not complete (model, cache, no item scored), or a run folder is corrupt or |
|   | mixes files of different runs; finished requests stay cached |
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
    # At DEBUG the HTTP libraries log request and response headers: every record is scrubbed
    # of keys, Authorization headers and URL credentials, like error messages are.
    from sua_audit.errors import install_log_redaction

    install_log_redaction()
    # transformers' own progress bars and advisory warnings would drown the audit's output.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


from sua_audit.cli import backends as _backends  # noqa: E402,F401  (registers the commands)
from sua_audit.cli import evaluate as _evaluate  # noqa: E402,F401
from sua_audit.cli import perturb as _perturb  # noqa: E402,F401
from sua_audit.cli import perturbations as _perturbations  # noqa: E402,F401
from sua_audit.cli import report as _report  # noqa: E402,F401
from sua_audit.cli import run as _run  # noqa: E402,F401
from sua_audit.cli import setup as _setup  # noqa: E402,F401
from sua_audit.cli import train as _train  # noqa: E402,F401


def main() -> None:
    """Entry point: run the app, mapping sua-audit errors to exit codes without tracebacks."""
    debug = os.environ.get("SUA_AUDIT_DEBUG") == "1"
    try:
        code = app(standalone_mode=False)
        if code == EXIT_INTERRUPTED:
            _interrupted()  # typer ≥ 0.2x returns 130 for Ctrl-C instead of raising Abort
        if isinstance(code, int) and code:
            sys.exit(code)
    except SuaAuditError as exc:
        if debug:
            raise
        from rich.markup import escape

        from sua_audit.ui.console import err_console, visible

        # One line per problem, never wrapped: CI logs and grep read these. Dataset and model
        # text in a message is shown, never sent to the terminal as control bytes.
        for line in str(exc).splitlines() or [""]:
            err_console.print(
                f"[bold red]error:[/] {escape(visible(line))}", highlight=False, soft_wrap=True
            )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit:
        raise
    except Exception as exc:
        if isinstance(exc, _abort_types()):
            _interrupted()  # click turns Ctrl-C into Abort before it reaches us
        if isinstance(exc, _usage_types()):
            # Bad flags, values, commands: click's message and usage line, exit 2.
            exc.show()  # type: ignore[attr-defined]
            sys.exit(getattr(exc, "exit_code", 2) or 2)
        if isinstance(exc, OSError) and not debug:
            # An unreadable path that no command checked first: one line, exit 2.
            from sua_audit.errors import EXIT_USAGE
            from sua_audit.ui.console import err_console

            where = f" '{exc.filename}'" if exc.filename else ""
            err_console.print(
                f"[bold red]error:[/] cannot use{where}: {exc.strerror or exc}",
                highlight=False,
                soft_wrap=True,
                markup=True,
            )
            sys.exit(EXIT_USAGE)
        raise


def _interrupted() -> None:
    from sua_audit.ui.console import err_console

    err_console.print(
        "interrupted: finished requests are in the cache; rerun the same command to resume.",
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(EXIT_INTERRUPTED)


def _usage_types() -> tuple[type[BaseException], ...]:
    """Usage-error classes of click and of typer's own copy of click (typer ≥ 0.2x bundles
    one, whose exceptions are not click's). Both expose ``show()`` and ``exit_code``."""
    import click

    found: list[type[BaseException]] = [click.ClickException]
    bundled = getattr(typer, "TyperException", None)
    if isinstance(bundled, type) and issubclass(bundled, BaseException):
        found.append(bundled)
    return tuple(found)


def _abort_types() -> tuple[type[BaseException], ...]:
    import click

    found: list[type[BaseException]] = [click.exceptions.Abort]
    if isinstance(typer.Abort, type) and typer.Abort not in found:
        found.append(typer.Abort)
    return tuple(found)
