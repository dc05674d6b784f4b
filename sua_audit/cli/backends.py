"""``sua-audit backends``: what each backend can return, and (``--probe``) what a server really does."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer

from sua_audit.cli import app


@dataclass(frozen=True)
class BackendInfo:
    name: str
    spec: str
    extra: str
    needs: tuple[str, ...]
    classification: str
    qa: str
    env: str


BACKENDS = (
    BackendInfo(
        name="embedded",
        spec="(no --model)",
        extra="hf",
        needs=("torch", "transformers"),
        classification="exact label log-probabilities, one batched forward pass",
        qa="k seeded samples + greedy, batched generate",
        env="-",
    ),
    BackendInfo(
        name="hf",
        spec="hf/<directory>",
        extra="hf",
        needs=("torch", "transformers"),
        classification="exact label log-probabilities, one batched forward pass",
        qa="k seeded samples + greedy, batched generate",
        env="-",
    ),
    BackendInfo(
        name="openai",
        spec="gpt-4o, openai/<model>",
        extra="openai",
        needs=("openai", "tenacity"),
        classification="first answer token's top_logprobs (1 request per variant); "
        "else k samples parsed to labels",
        qa="n samples in one request; else k seeded requests",
        env="OPENAI_API_KEY; --base-url / SUA_AUDIT_BASE_URL / OPENAI_BASE_URL",
    ),
    BackendInfo(
        name="litellm",
        spec="litellm/<provider>/<model>",
        extra="litellm",
        needs=("litellm", "tenacity"),
        classification="as openai, where the provider returns logprobs",
        qa="as openai, where the provider honours n",
        env="the provider's own key variable (ANTHROPIC_API_KEY, ...); --base-url",
    ),
    BackendInfo(
        name="fake",
        spec="fake/<name>",
        extra="-",
        needs=(),
        classification="deterministic hash of the prompt (tests, dry runs)",
        qa="deterministic hash of the prompt and seed",
        env="-",
    ),
)


def _installed(info: BackendInfo) -> bool:
    # find_spec locates a package without importing it: the listing stays instant.
    return all(importlib.util.find_spec(module) is not None for module in info.needs)


@app.command()
def backends(
    probe: Annotated[
        str | None,
        typer.Option(
            help="Send two small requests to this model (same specs as run --model) and report "
            "what it really returns: logprobs, whether it honours n. Costs two API calls.",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(envvar="SUA_AUDIT_BASE_URL", help="OpenAI-compatible server to probe."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one answer.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
) -> None:
    """List backends, how each turns answers into distributions, and whether it is installed.

    Hosted servers differ in what they return; sua-audit detects it during a run and records per
    item which path it used. --probe finds out before you spend a run on it.
    """
    if probe is not None:
        found = asyncio.run(_probe(probe, base_url=base_url, timeout=timeout))
        if as_json:
            typer.echo(json.dumps(found, indent=2))
        else:
            _print_probe(found)
        return
    rows = [{**asdict(info), "installed": _installed(info)} for info in BACKENDS]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from sua_audit.ui.console import out_console

    table = Table(title="sua-audit backends", show_lines=True)
    table.add_column("backend", no_wrap=True)
    table.add_column("how answers become distributions")
    for row in rows:
        hint = "installed" if row["installed"] else f"pip install 'sua-audit[{row['extra']}]'"
        table.add_row(
            f"[bold]{row['name']}[/]\n{escape(row['spec'])}\n[dim]{escape(hint)}[/]",
            f"classification/NLI: {escape(row['classification'])}\n"
            f"QA: {escape(row['qa'])}\nkeys: {escape(row['env'])}",
        )
    out_console.print(table)


async def _probe(spec: str, *, base_url: str | None, timeout: float) -> dict[str, Any]:
    """A two-label choice (logprobs?) and a two-sample generation (n honoured?)."""
    from sua_audit.backends import CompletionRequest, GenerationParams, get_backend
    from sua_audit.tasks import build_messages, choice_table, label_logprobs

    backend = get_backend(spec, base_url=base_url, timeout=timeout, max_attempts=2)
    # The very prompt an audit sends for a two-label item, so the probe sees what a run would.
    labels = ("positive", "negative")
    messages = build_messages("classification", {"input": "A warm, funny film."}, labels)
    choices, owner = choice_table(labels)
    params = GenerationParams(temperature=1.0, max_tokens=8, seed=0)
    try:
        choice = await backend.complete(
            CompletionRequest(messages=messages, params=params, choices=choices, n=3)
        )
        qa = build_messages("qa", {"input": "What is the capital of France?"}, None)
        sampled = await backend.complete(CompletionRequest(messages=qa, params=params, n=2))
    finally:
        await backend.aclose()
    described = backend.describe()
    return {
        "model": described,
        "capabilities": asdict(backend.capabilities),
        "classification_path": choice.path,
        "generation_path": sampled.path,
        "label_logprobs": dict(
            zip(labels, label_logprobs(choice.choice_logprobs or (), owner, 2), strict=True)
        )
        if choice.choice_logprobs
        else None,
    }


def _print_probe(found: dict[str, Any]) -> None:
    from rich.table import Table

    from sua_audit.ui.console import out_console

    model = found["model"]
    table = Table(title=f"probe · {model.get('model')}", show_header=False)
    table.add_column("fact", style="bold")
    table.add_column("value")
    for key, value in model.items():
        table.add_row(key, str(value))
    table.add_row("classification path", str(found["classification_path"]))
    table.add_row("generation path", str(found["generation_path"]))
    table.add_row("label log-probs", json.dumps(found["label_logprobs"]))
    out_console.print(table)
