"""A Rich progress bar on stderr implementing the engine's Progress protocol."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sua_audit.ui.console import err_console


class RichProgress:
    """Requests done / total, with the share served from the cache."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("requests · {task.fields[hits]} cached"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=err_console,
            transient=False,
        )
        self._task: Any = None
        self._hits = 0

    def start(self, total: int, description: str) -> None:
        """Show the bar."""
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, hits=0, note="")

    def advance(self, n: int = 1, *, cached: bool = False) -> None:
        """Move the bar."""
        if cached:
            self._hits += n
        if self._task is not None:
            self._progress.update(self._task, advance=n, hits=self._hits)

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (the latest provider batch status)."""
        if self._task is not None:
            self._progress.update(self._task, note=text)

    def close(self) -> None:
        """Stop drawing."""
        self._progress.stop()
