"""``sua-audit perturbations``: the perturbation kinds a plan can name, and what each does."""

from __future__ import annotations

import inspect
import json
from typing import Annotated

import typer

from sua_audit.cli import app


@app.command()
def perturbations(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
) -> None:
    """List perturbation kinds for --perturbations (kind:count@budget,...).

    Model kinds (paraphrase, ambiguity, adversarial) are written by --rewriter-model and
    checked by --meaning-filter; the others are rules and need no model.
    """
    from sua_audit.perturbation import (
        DEFAULT_KINDS,
        available_perturbers,
        get_perturber,
        kind_traits,
    )

    rows = []
    for kind in available_perturbers():
        doc = inspect.getdoc(type(get_perturber(kind))) or ""
        rows.append(
            {
                "kind": kind,
                "model": kind_traits(kind).rewriter,
                "default": kind in DEFAULT_KINDS,
                "description": " ".join(doc.split("\n\n")[0].split()).replace("``", ""),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from sua_audit.ui.console import out_console

    table = Table(title="perturbation kinds", caption="plain K = typo, word, distractor in turn")
    table.add_column("kind", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("what it does (budget: most edits per text field)")
    for row in rows:
        source = "rewriter model" if row["model"] else "rules"
        table.add_row(str(row["kind"]), source, escape(str(row["description"])))
    out_console.print(table)
