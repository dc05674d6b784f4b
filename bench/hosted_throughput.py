"""Hosted-backend throughput against a loopback OpenAI-compatible server with fixed latency.

The stub server (``tests/support/stub_openai.py``) runs in its own process and answers every
chat-completions request after ``--latency`` seconds (default 0.2). With ``--concurrency`` C
requests in flight (default 64) the best possible rate is C / latency (320 req/s by default);
each side reports its rate as a ratio to that ideal (target >= 0.9) and its CPU time per request.

Sides, rotated over ``--repeats`` (ABC, BCA, CAB, ...):

* ``backend`` — the product path without the CLI: ``OpenAIBackend("x", base_url=stub,
  concurrency=C)`` under ``engine.Generator`` (cache off); N label-scoring requests built as the
  audit builds them (``tasks.build_messages`` + ``tasks.choice_table``), all given to one
  ``generate_many``. Each is one HTTP call (path ``top_logprobs``). CPU: this process's CPU time
  over the pass / N (the stub runs elsewhere). Connections are opened by a warm-up of C requests.
* ``floor`` — a minimal stdlib asyncio HTTP/1.1 client: C keep-alive connections, each sending the
  same JSON body the backend sends and parsing the JSON answer, back to back. It shows what this
  machine and this stub allow; ``backend / floor`` is what our client itself loses.
* ``cli`` — ``python -m sua_audit run --model openai/x --base-url STUB --concurrency C
  --cache-mode off --perturbations K`` on a synthetic classification dataset (``--cli-items``
  items × (K+1) variants, one request each). Rates use the ``http_calls`` of summary.json over
  its ``wall_seconds`` (the audit, with backend creation, without interpreter start-up), over
  the subprocess wall time, and in steady state: the requests beyond a 1-item run of the same
  command over the ``wall_seconds`` beyond its own (what a longer run converges to; the 1-item
  run holds the fixed costs: importing and building the backend, the first answer's latency,
  the summary). CPU: the subprocess's user+system time / requests, and the marginal CPU per
  request beyond the 1-item run (start-up and imports excluded).

``--sweep`` then runs ``backend`` and ``floor`` once at each listed concurrency, to show how the
ratio changes with C. ``--diagnose`` adds sides that test suggested fixes (not the product):
the backend with ``_send`` replaced by ``client.post(..., cast_to=dict)`` (skips the SDK's
request transform and response models), the same over the SDK's aiohttp transport when aiohttp
is installed, the CLI with the audit's item chunk raised to the whole dataset, and a profile of
one backend pass grouped by package.

The machine has few cores and the stub competes with the client for them; the stub's CPU time
per request and the load average are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import emit, median, table
from _stub import StubProcess, cli_run_args, run_measured, write_classification_dataset

TARGET_RATIO = 0.9
LABELS = ("negative", "positive")

# Runs the CLI with the audit's item chunk raised to argv[1] items (diagnostic side only).
BIG_CHUNK_HOOK = (
    "import runpy, sys\n"
    "import sua_audit.auditing as audit\n"
    "audit.CHUNK_ITEMS = int(sys.argv.pop(1))\n"
    "sys.argv = ['sua-audit', *sys.argv[1:]]\n"
    "runpy.run_module('sua_audit', run_name='__main__')\n"
)


def build_requests(n: int, tag: str) -> list[Any]:
    """``n`` label-scoring requests, as the audit builds them for classification items."""
    from sua_audit import tasks
    from sua_audit.backends.base import CompletionRequest, GenerationParams

    choices, _ = tasks.choice_table(LABELS)
    params = GenerationParams(temperature=0.7, max_tokens=32, seed=0)
    out = []
    for i in range(n):
        text = f"item {tag}-{i}: the film was long but the ending felt warm and clever"
        messages = tasks.build_messages("classification", {"input": text}, LABELS)
        out.append(CompletionRequest(messages, params, choices=choices, n=5))
    return out


def wire_body(request: Any) -> dict[str, Any]:
    """The JSON body the hosted backend sends for a label-scoring request."""
    return {
        "model": "x",
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": 0.0,
        "max_tokens": 1,
        "logprobs": True,
        "top_logprobs": 20,
    }


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# -- the backend side --------------------------------------------------------------------------


def make_backend(variant: str, base_url: str, concurrency: int) -> Any:
    """The product's OpenAIBackend, or (diagnostic) a variant with a leaner ``_send``."""
    from sua_audit.backends.openai_backend import OpenAIBackend

    if variant == "backend":
        return OpenAIBackend("x", base_url=base_url, concurrency=concurrency)

    class PostBackend(OpenAIBackend):
        """Sends the body as-is and returns the JSON dict: no request transform, no models."""

        async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
            data: dict[str, Any] = await self._client.post(
                "/chat/completions", body=body, cast_to=dict
            )
            return data

    backend = PostBackend("x", base_url=base_url, concurrency=concurrency)
    if variant == "post+aiohttp":
        import openai

        backend._client = openai.AsyncOpenAI(
            api_key="no-key-needed",
            base_url=backend.base_url,
            timeout=backend.timeout,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )
    return backend


async def backend_pass(
    variant: str, stub: StubProcess, concurrency: int, n: int, tag: str, latency: float
) -> dict[str, Any]:
    """N requests through Generator + backend; rate, CPU per request, latency percentiles."""
    from sua_audit.backends.base import Completion
    from sua_audit.engine import Generator

    backend = make_backend(variant, stub.base_url, concurrency)
    generator = Generator(backend, None, cache_mode="off")
    latencies: list[float] = []
    complete = backend.complete

    async def timed(request: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await complete(request)
        finally:
            latencies.append(time.perf_counter() - t0)

    backend.complete = timed
    try:
        await generator.generate_many(build_requests(concurrency, tag + "w"))  # open connections
        requests = build_requests(n, tag)
        latencies.clear()
        calls0, stub0 = backend.calls, stub.cpu_now()
        c0, t0 = time.process_time(), time.perf_counter()
        results = await generator.generate_many(requests)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stub1 = stub.cpu_now()
    finally:
        await backend.aclose()
    ok = all(isinstance(r, Completion) and r.path == "top_logprobs" for r in results)
    calls = backend.calls - calls0
    rate = calls / wall
    return {
        "side": variant,
        "concurrency": concurrency,
        "requests": calls,
        "ok": ok and calls == n,
        "wall_s": wall,
        "req_per_s": rate,
        "ratio": rate / (concurrency / latency),
        "client_cpu_ms_per_req": 1000 * cpu / calls,
        "client_core_share": cpu / wall,
        "stub_cpu_ms_per_req": _per_req(stub0, stub1, calls),
        "latency_p50_ms": 1000 * pct(latencies, 0.5),
        "latency_p90_ms": 1000 * pct(latencies, 0.9),
        "latency_max_ms": 1000 * max(latencies),
        "peak_in_flight": backend.limit.peak,
    }


def _per_req(before: float | None, after: float | None, n: int) -> float | None:
    if before is None or after is None or n == 0:
        return None
    return 1000 * (after - before) / n


# -- the floor side ----------------------------------------------------------------------------


async def floor_pass(
    stub: StubProcess, concurrency: int, n: int, tag: str, latency: float
) -> dict[str, Any]:
    """The same requests over C raw keep-alive HTTP/1.1 connections (stdlib asyncio only)."""
    url = urlsplit(stub.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\n"
        "content-type: application/json\r\ncontent-length: "
    ).encode()
    bodies = iter([wire_body(r) for r in build_requests(n, tag)])
    conns = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    latencies: list[float] = []
    answered = 0
    bad = 0

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered, bad
        for body in bodies:
            t0 = time.perf_counter()
            data = json.dumps(body).encode()
            writer.write(head + str(len(data)).encode() + b"\r\n\r\n" + data)
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            answer = json.loads(await reader.readexactly(length))
            content = answer["choices"][0]["logprobs"]["content"]
            if " 200 " not in lines[0] + " " or not content[0]["top_logprobs"]:
                bad += 1
            answered += 1
            latencies.append(time.perf_counter() - t0)

    stub0 = stub.cpu_now()
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
    finally:
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stub1 = stub.cpu_now()
        for _, w in conns:
            w.close()
    rate = answered / wall
    return {
        "side": "floor",
        "concurrency": concurrency,
        "requests": answered,
        "ok": bad == 0 and answered == n,
        "wall_s": wall,
        "req_per_s": rate,
        "ratio": rate / (concurrency / latency),
        "client_cpu_ms_per_req": 1000 * cpu / answered,
        "client_core_share": cpu / wall,
        "stub_cpu_ms_per_req": _per_req(stub0, stub1, answered),
        "latency_p50_ms": 1000 * pct(latencies, 0.5),
        "latency_p90_ms": 1000 * pct(latencies, 0.9),
        "latency_max_ms": 1000 * max(latencies),
        "peak_in_flight": concurrency,
    }


# -- the CLI side ------------------------------------------------------------------------------


def cli_pass(
    side: str,
    stub: StubProcess,
    dataset: Path,
    workdir: Path,
    args: argparse.Namespace,
    *extra: str,
    chunk: int | None = None,
) -> dict[str, Any]:
    """One ``sua-audit run`` subprocess against the stub (cache off)."""
    out = Path(tempfile.mkdtemp(dir=workdir))
    cli = cli_run_args(
        dataset,
        stub.base_url,
        out,
        "--concurrency",
        str(args.concurrency),
        "--perturbations",
        str(args.k),
        *extra,
    )
    if chunk is None:
        cmd = [sys.executable, "-m", "sua_audit", *cli]
    else:
        cmd = [sys.executable, "-c", BIG_CHUNK_HOOK, str(chunk), *cli]
    stub0 = stub.cpu_now()
    m = run_measured(cmd)
    stub1 = stub.cpu_now()
    if m.returncode != 0:
        print(m.stderr[-3000:], file=sys.stderr)
        return {"side": side, "ok": False, "returncode": m.returncode}
    summary = m.summary_json()
    calls = int(summary["model"]["http_calls"])
    ideal = args.concurrency / args.latency
    return {
        "side": side,
        "concurrency": args.concurrency,
        "requests": calls,
        "ok": summary["failed_requests"] == 0
        and summary["results"]["answer_paths"] == {"top_logprobs": calls},
        "wall_s": m.wall_s,
        "audit_wall_s": summary["wall_seconds"],
        "req_per_s": calls / summary["wall_seconds"],
        "ratio": calls / summary["wall_seconds"] / ideal,
        "process_req_per_s": calls / m.wall_s,
        "process_ratio": calls / m.wall_s / ideal,
        "cpu_s": m.cpu_s,
        "client_cpu_ms_per_req": 1000 * m.cpu_s / calls,
        "stub_cpu_ms_per_req": _per_req(stub0, stub1, calls),
        "peak_in_flight": summary["model"]["peak_in_flight"],
    }


# -- profile (diagnostic) ----------------------------------------------------------------------

GROUPS = (
    ("openai SDK", ("/openai/",)),
    ("httpx2 / httpcore2 / h11 / anyio", ("/httpx2/", "/httpcore2/", "/h11/", "/anyio/")),
    ("pydantic", ("/pydantic",)),
    ("tenacity", ("/tenacity/",)),
    ("sua_audit", ("/sua_audit/",)),
    ("asyncio / selectors / socket", ("/asyncio/", "selectors.py", "socket")),
    ("typing / json / other stdlib", ("/python3.11/", "/lib/python3")),
)


KEY_FUNCTIONS = (
    (
        "SDK request transform (async_maybe_transform)",
        "openai/_utils/_transform.py",
        "async_maybe_transform",
    ),
    ("SDK request build (_build_request)", "openai/_base_client.py", "_build_request"),
    ("SDK response -> models (_process_response)", "openai/_base_client.py", "_process_response"),
    ("models -> dict (model_dump)", "openai/_models.py", "model_dump"),
    ("httpx2 send (transport, pool, h11)", "httpx2/_client.py", "send"),
    (
        "  pool scan (_assign_requests_to_connections)",
        "httpcore2/_async/connection_pool.py",
        "_assign_requests_to_connections",
    ),
    ("hosted retry wrapper (tenacity, _call)", "sua_audit/backends/hosted.py", "_call"),
    ("label matching (match_top_logprobs)", "sua_audit/backends/hosted.py", "match_top_logprobs"),
)


def profile_backend(
    stub: StubProcess, concurrency: int, n: int, latency: float
) -> tuple[list[Any], list[Any]]:
    """One backend pass under cProfile: own time summed by package, and the cumulative time
    per request of a few key functions (suspended coroutines are not counted)."""
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(backend_pass("backend", stub, concurrency, n, "prof", latency))
    prof.disable()
    totals: dict[str, float] = {}
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    key_cum: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, cumtime, _) in stats.items():
        group = "built-ins (C)" if filename == "~" else "other"
        if filename == "~" and "poll" in name:
            group = "waiting (epoll)"
        for label, needles in GROUPS:
            if any(s in filename for s in needles):
                group = label
                break
        totals[group] = totals.get(group, 0.0) + tottime
        for label, file_part, func in KEY_FUNCTIONS:
            if name == func and filename.endswith(file_part):
                key_cum[label] = max(key_cum.get(label, 0.0), cumtime)
    # n timed requests plus the warm-up's ``concurrency``
    per_req = [
        [label, 1000 * key_cum[label] / (n + concurrency)]
        for label, _, _ in KEY_FUNCTIONS
        if label in key_cum
    ]
    return sorted(totals.items(), key=lambda kv: -kv[1]), per_req


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="stub seconds per answer")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--rounds", type=int, default=20, help="backend/floor requests = rounds × concurrency"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cli-items", type=int, default=2000, help="items in the CLI dataset (× K+1 requests)"
    )
    parser.add_argument("--k", type=int, default=4, help="perturbations per item (CLI side)")
    parser.add_argument(
        "--sweep",
        default="16,32,48,64,128,256",
        help="concurrencies for the backend/floor sweep ('none' to skip)",
    )
    parser.add_argument("--diagnose", action="store_true", help="add the suggested-fix sides")
    args = parser.parse_args()
    c, latency = args.concurrency, args.latency
    n = args.rounds * c
    ideal = c / latency
    load_start = os.getloadavg()[0]
    print(
        f"stub latency {latency * 1000:.0f} ms, concurrency {c}: ideal {ideal:.0f} req/s; "
        f"{n} requests per backend/floor pass; CLI {args.cli_items} items × {args.k + 1} "
        f"variants; {os.cpu_count()} CPU cores; load average {load_start:.2f}",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    sweep: list[dict[str, Any]] = []
    profile: list[Any] = []
    key_functions: list[Any] = []
    fixed: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, StubProcess(latency=latency) as stub:
        workdir = Path(tmp)
        dataset = write_classification_dataset(workdir / "cls.jsonl", args.cli_items)
        # Start-up cost of the CLI (1 item), for the marginal CPU per request; also warms up.
        one = cli_pass("cli-1-item", stub, dataset, workdir, args, "--limit", "1")
        fixed = {k: one.get(k) for k in ("requests", "cpu_s", "wall_s", "audit_wall_s")}
        sides: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
            ("backend", lambda t: asyncio.run(backend_pass("backend", stub, c, n, t, latency))),
            ("floor", lambda t: asyncio.run(floor_pass(stub, c, n, t, latency))),
            ("cli", lambda t: cli_pass("cli", stub, dataset, workdir, args)),
        ]
        if args.diagnose:
            sides += [
                ("post", lambda t: asyncio.run(backend_pass("post", stub, c, n, t, latency))),
                ("cli-one-chunk", lambda t: _big_chunk(stub, dataset, workdir, args)),
            ]
            try:
                import aiohttp  # noqa: F401

                sides.append(
                    (
                        "post+aiohttp",
                        lambda t: asyncio.run(backend_pass("post+aiohttp", stub, c, n, t, latency)),
                    )
                )
            except ImportError:
                print("(aiohttp not installed: no post+aiohttp side)")
        for rep in range(args.repeats):
            order = sides[rep % len(sides) :] + sides[: rep % len(sides)]
            for name, fn in order:
                r = fn(f"r{rep}")
                runs.setdefault(name, []).append(r)
                print(
                    f"  repeat {rep + 1} {name:13s} {r.get('req_per_s', 0):7.1f} req/s "
                    f"ratio {r.get('ratio', 0):.3f}  cpu {r.get('client_cpu_ms_per_req', 0):.2f} "
                    f"ms/req  ok={r['ok']}",
                    flush=True,
                )
        if args.sweep != "none":
            for cc in [int(x) for x in args.sweep.split(",") if x]:
                for name in ("backend", "floor"):
                    nn = args.rounds * cc
                    if name == "backend":
                        r = asyncio.run(backend_pass("backend", stub, cc, nn, f"s{cc}", latency))
                    else:
                        r = asyncio.run(floor_pass(stub, cc, nn, f"s{cc}", latency))
                    sweep.append(r)
                    print(
                        f"  sweep C={cc:<4d} {name:8s} {r['req_per_s']:7.1f} req/s "
                        f"ratio {r['ratio']:.3f}  cpu {r['client_cpu_ms_per_req']:.2f} ms/req",
                        flush=True,
                    )
        if args.diagnose:
            profile, key_functions = profile_backend(stub, c, n, latency)
    load_end = os.getloadavg()[0]

    med = {name: _medians(rs) for name, rs in runs.items()}
    cli = med.get("cli", {})
    if cli and fixed.get("cpu_s") is not None:
        extra_calls = cli["requests"] - fixed["requests"]
        cli["marginal_cpu_ms_per_req"] = 1000 * (cli["cpu_s"] - fixed["cpu_s"]) / extra_calls
        steady = [
            (r["requests"] - fixed["requests"]) / (r["audit_wall_s"] - fixed["audit_wall_s"])
            for r in runs["cli"]
            if r.get("ok")
        ]
        cli["steady_req_per_s"] = median(steady)
        cli["steady_ratio"] = cli["steady_req_per_s"] / ideal
        cli["per_repeat_steady_ratio"] = [round(x / ideal, 3) for x in steady]
    print()
    rows = []
    for name, m in med.items():
        rows.append(
            [
                name,
                m["requests"],
                m["req_per_s"],
                m["ratio"],
                m["client_cpu_ms_per_req"],
                m.get("stub_cpu_ms_per_req") or "-",
                m.get("latency_p50_ms", "-"),
                m.get("latency_p90_ms", "-"),
            ]
        )
    print(f"medians of {args.repeats} repeats; ideal {ideal:.0f} req/s")
    print(
        table(
            [
                "side",
                "requests",
                "req/s",
                "ratio",
                "client CPU ms/req",
                "stub CPU ms/req",
                "p50 ms",
                "p90 ms",
            ],
            rows,
        )
    )
    if cli:
        print(
            f"cli: subprocess {cli['wall_s']:.2f} s ({cli['process_req_per_s']:.1f} req/s, ratio "
            f"{cli['process_ratio']:.3f}); CPU {cli['cpu_s']:.2f} s = "
            f"{cli['client_cpu_ms_per_req']:.2f} ms/req, marginal beyond a 1-item run "
            f"({fixed['cpu_s']:.2f} s CPU, {fixed['requests']} requests): "
            f"{cli.get('marginal_cpu_ms_per_req', float('nan')):.2f} ms/req"
        )
        print(
            f"cli steady state (beyond the 1-item run's {fixed['audit_wall_s']:.2f} s): "
            f"{cli['steady_req_per_s']:.1f} req/s, ratio {cli['steady_ratio']:.3f} "
            f"(repeats {cli['per_repeat_steady_ratio']})"
        )
    if "backend" in med and "floor" in med:
        print(
            f"backend / floor: {med['backend']['req_per_s'] / med['floor']['req_per_s']:.3f} "
            f"of the rate, {med['backend']['client_cpu_ms_per_req'] / med['floor']['client_cpu_ms_per_req']:.1f}× "
            f"the CPU per request"
        )
    if sweep:
        print("\nsweep (one pass each)")
        print(
            table(
                ["C", "side", "ideal req/s", "req/s", "ratio", "client CPU ms/req", "p90 ms"],
                [
                    [
                        r["concurrency"],
                        r["side"],
                        r["concurrency"] / latency,
                        r["req_per_s"],
                        r["ratio"],
                        r["client_cpu_ms_per_req"],
                        r["latency_p90_ms"],
                    ]
                    for r in sweep
                ],
            )
        )
    if profile:
        total = sum(t for _, t in profile)
        print("\nprofile of one backend pass: own time by package (cProfile inflates it)")
        print(
            table(
                ["package", "seconds", "share"],
                [[g, t, f"{100 * t / total:.0f} %"] for g, t in profile],
            )
        )
        print("key functions, cumulative ms per request under cProfile")
        print(table(["function", "ms/req (profiled)"], key_functions))
    verdict = {
        name: med[name]["ratio"] >= TARGET_RATIO for name in ("backend", "cli") if name in med
    }
    if "steady_ratio" in cli:
        verdict["cli steady state"] = cli["steady_ratio"] >= TARGET_RATIO
    print(
        "\ntarget ratio >= 0.9: "
        + ", ".join(f"{k} {'met' if v else 'missed'}" for k, v in verdict.items())
        + f" (load average {load_start:.2f} at start, {load_end:.2f} at end)"
    )
    ok = all(r["ok"] for rs in runs.values() for r in rs) and all(r["ok"] for r in sweep)
    if not ok:
        print("error: some requests failed or took another path than top_logprobs")
    emit(
        {
            "bench": "hosted_throughput",
            "latency_s": latency,
            "concurrency": c,
            "ideal_req_per_s": ideal,
            "repeats": args.repeats,
            "medians": med,
            "cli_1_item": fixed,
            "sweep": [
                {
                    k: r[k]
                    for k in ("side", "concurrency", "req_per_s", "ratio", "client_cpu_ms_per_req")
                }
                for r in sweep
            ],
            "profile": profile,
            "profile_key_functions_ms_per_req": key_functions,
            "target_ratio": TARGET_RATIO,
            "target_met": verdict,
            "load_average": [load_start, load_end],
            "ok": ok,
        }
    )
    return 0 if ok else 1


def _big_chunk(
    stub: StubProcess, dataset: Path, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    return cli_pass("cli-one-chunk", stub, dataset, workdir, args, chunk=args.cli_items)


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in results[0].items():
        values = [r[key] for r in results if r.get(key) is not None]
        if isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value if key != "ok" else all(r["ok"] for r in results)
        elif values:
            out[key] = median(values)
    out["per_repeat_ratio"] = [round(r.get("ratio", float("nan")), 3) for r in results]
    return out


if __name__ == "__main__":
    sys.exit(main())
