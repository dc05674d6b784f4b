"""Running ``sua-audit`` from tests: in a real process, or in this one.

``sua`` starts ``python -m sua_audit`` on this checkout (its folder first on PYTHONPATH, so a
worktree tests its own code). Use it where a real process is the point: exit codes of the
console script, signals, environment read at start-up, real models, long runs.

``sua_in_process`` calls ``sua_audit.cli.main`` (the console script's entry point, with its
mapping of errors to exit codes and one-line ``error:`` messages) with ``sys.argv``, the
environment and the standard streams swapped for the call. It costs milliseconds instead of an
interpreter start, so tests of option parsing and of refusals before any work use it. Both
return a ``subprocess.CompletedProcess`` with the exit code and the text of stdout and stderr.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[2]

#: Wide enough that no message or help line is wrapped by the terminal width.
COLUMNS = 120


def _environment(
    base: Mapping[str, str], columns: int, home: Path | None, env: Mapping[str, str | None]
) -> dict[str, str]:
    """``base`` with COLUMNS, SUA_AUDIT_HOME and ``env`` applied (a None value unsets)."""
    full = {**base, "COLUMNS": str(columns)}
    if home is not None:
        full["SUA_AUDIT_HOME"] = str(home)
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return full


def sua(
    *args: str,
    home: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    columns: int = COLUMNS,
    timeout: float | None = 600,
    **kw: object,
) -> subprocess.CompletedProcess[str]:
    """``python -m sua_audit ARGS`` in a subprocess of this checkout (never raises on exit)."""
    full = _environment(os.environ, columns, home, env or {})
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-m", "sua_audit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        check=False,
        **kw,
    )


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """os.environ holds exactly ``values`` for the block, then what it held before."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sua_in_process(
    *args: str,
    home: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    columns: int = COLUMNS,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``sua-audit ARGS`` through ``sua_audit.cli.main`` in this process, as ``sua`` would see it.

    The output is what a subprocess with captured pipes gets: no colour, ``columns`` wide.
    The environment (the CLI sets defaults in it) and the working directory are restored.
    """
    from sua_audit.cli import main
    from sua_audit.ui import console

    # What a child's pipes are: UTF-8, strict on stdout, backslashreplace on stderr, with a
    # binary buffer below; read back as subprocess.run(text=True) reads (universal newlines).
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(
        io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    code: int = 0
    with contextlib.ExitStack() as stack:
        # main() configures logging for a process (a root handler, the redacting record
        # factory): what a child process keeps to itself must not leak into later tests.
        stack.enter_context(_logging_restored())
        stack.enter_context(_environ(_environment(os.environ, columns, home, env or {})))
        stack.enter_context(mock.patch.object(sys, "argv", ["sua-audit", *args]))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        # The rich consoles were made at import: fix their width and turn colour off, as for a
        # pipe, whatever terminal pytest itself runs in. Their file is sys.stdout/sys.stderr
        # at each print, so the redirections below reach them.
        for con in (console.err_console, console.out_console):
            stack.enter_context(mock.patch.object(con, "_width", columns))
            stack.enter_context(mock.patch.object(con, "_color_system", None))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            main()
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:  # sys.exit("message"): Python prints it and exits 1
                print(exc.code, file=sys.stderr)
                code = 1
    return subprocess.CompletedProcess(
        ["sua-audit", *args], code, stdout=_text(out), stderr=_text(err)
    )


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    factory = logging.getLogRecordFactory()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.setLogRecordFactory(factory)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    data = stream.buffer.getvalue()  # type: ignore[attr-defined]
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
