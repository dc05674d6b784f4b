"""A large synthetic audit against a fast loopback server: peak memory and cache write rate.

For each size in ``--items`` (default 10,000 and 100,000) the script writes a synthetic
two-label classification dataset in a temporary folder, starts the stub server
(``tests/support/stub_openai.py``, latency 0, ``--no-record``, its own process) and runs

    python -m sua_audit run --dataset DATA --model openai/x --base-url STUB --perturbations K
        --cache FRESH.db --out DIR --json --no-progress

(K = ``--k``, default 1, so 2 requests per item) in an interpreter that wraps ``Store.put_many``
to count the rows written to the cache and the time spent inside it. It reports:

* peak memory of that process (``ru_maxrss`` from ``os.wait4``; target < 500 MB), and its
  resident memory sampled every second, to show whether memory grows with the run;
* cache writes in the run: rows written / seconds inside ``put_many`` (target >= 20,000 rows/s),
  also over the first and the last tenth of the rows (the key index grows during the run), the
  number of write transactions, and rows in the cache afterwards;
* wall time, CPU time and requests/s.

Then it measures the store alone: ``--store-rows`` (default 100,000) rows, copied from the
run's own cache rows with new keys, inserted through ``Store.put_many`` into a fresh cache in
batches of the engine's flush size (``Generator(flush_rows=...)``, 64), of 1,000 and in one
batch; and, as diagnostics of suggested fixes, the flush-size batches with
``PRAGMA synchronous=NORMAL``, and with that plus a 64 MB page cache. Keys are sha256 hashes,
as real keys are, so each insert lands at a random place in the key index. Sides rotate over
``--store-repeats``.

The defaults take about 8–9 minutes on 2 cores (the 100,000-item run alone about 7).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import emit, median, table
from _stub import (
    CLI_HOOK,
    StubProcess,
    cache_writes,
    cli_run_args,
    run_measured,
    write_classification_dataset,
)

TARGET_MB = 500.0
TARGET_ROWS_PER_S = 20_000.0


def audit_run(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One CLI run of ``n`` items against a fresh latency-0 stub."""
    dataset = write_classification_dataset(workdir / f"syn-{n}.jsonl", n)
    cache = workdir / f"cache-{n}.db"
    out = workdir / f"out-{n}"
    with StubProcess(latency=0.0, record=False) as stub:
        cmd = [
            sys.executable,
            "-c",
            CLI_HOOK,
            *cli_run_args(
                dataset,
                stub.base_url,
                out,
                "--perturbations",
                str(args.k),
                "--concurrency",
                str(args.concurrency),
                cache=cache,
            ),
        ]
        m = run_measured(cmd, sample_every=1.0)
    writes = cache_writes(m.stderr)
    if m.returncode != 0 or writes is None:
        print(m.stderr[-3000:], file=sys.stderr)
        return {"items": n, "ok": False, "returncode": m.returncode}
    summary = m.summary_json()
    with sqlite3.connect(cache) as conn:
        cached = conn.execute("select count(*) from completions").fetchone()[0]
    samples = [rss for _, rss in m.rss_samples_mb]
    quarters = [samples[min(len(samples) - 1, int(q * len(samples)))] for q in (0.25, 0.5, 0.75)]
    calls = summary["model_calls"]
    first, last = tenth_rates(writes.get("timeline") or [], writes["rows"], writes["seconds"])
    return {
        "items": n,
        "ok": summary["failed_requests"] == 0 and cached == calls,
        "requests": calls,
        "stub_requests": stub.served,
        "wall_s": m.wall_s,
        "audit_wall_s": summary["wall_seconds"],
        "cpu_s": m.cpu_s,
        "stub_cpu_s": stub.cpu_seconds,
        "req_per_s": calls / summary["wall_seconds"],
        "maxrss_mb": m.maxrss_mb,
        "rss_quartiles_mb": quarters,
        "rss_last_sample_mb": samples[-1] if samples else None,
        "cache_rows": cached,
        "cache_bytes": sum(p.stat().st_size for p in workdir.glob(f"cache-{n}.db*")),
        "write_rows": writes["rows"],
        "write_seconds": writes["seconds"],
        "write_transactions": writes["calls"],
        "write_rows_per_s": writes["rows"] / writes["seconds"] if writes["seconds"] else None,
        "write_share_of_wall": writes["seconds"] / summary["wall_seconds"],
        "write_rows_per_s_first_tenth": first,
        "write_rows_per_s_last_tenth": last,
    }


def tenth_rates(
    timeline: list[list[float]], rows: int, seconds: float
) -> tuple[float | None, float | None]:
    """Write rates (rows/s inside put_many) over the first and the last tenth of the rows."""
    points = [(0, 0.0), *[(int(r), float(s)) for r, s in timeline], (rows, seconds)]
    if rows == 0 or len(points) < 4:
        return None, None
    cut_lo, cut_hi = rows / 10, rows - rows / 10
    lo = min(points, key=lambda p: abs(p[0] - cut_lo))
    hi = min(points, key=lambda p: abs(p[0] - cut_hi))
    first = lo[0] / lo[1] if lo[1] else None
    last = (rows - hi[0]) / (seconds - hi[1]) if seconds > hi[1] else None
    return first, last


def sample_rows(cache: Path, limit: int = 1000) -> list[dict[str, Any]]:
    """Real rows from a run's cache, to copy for the store-alone test."""
    with sqlite3.connect(cache) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("select * from completions limit ?", (limit,)).fetchall()
    return [dict(r) for r in rows]


def store_pass(
    template: list[dict[str, Any]], n: int, batch: int, path: Path, *, pragmas: Sequence[str]
) -> dict[str, Any]:
    """Insert ``n`` rows (copies of ``template`` with new keys) in batches of ``batch``."""
    from sua_audit.store import Store

    rows = []
    for i in range(n):
        row = dict(template[i % len(template)])
        # Real keys are hashes, so inserts land at random places in the key index.
        row["key"] = "sha256:" + hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        rows.append(row)
    store = Store.open(path)
    for pragma in pragmas:
        store.db.execute(f"pragma {pragma}")
    try:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            store.put_many(rows[start : start + batch])
        seconds = time.perf_counter() - t0
        count = store.count_completions()
    finally:
        store.close()
    return {"rows": count, "seconds": seconds, "rows_per_s": count / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items", type=int, nargs="+", default=[10_000, 100_000], help="dataset sizes to run"
    )
    parser.add_argument("--k", type=int, default=1, help="perturbations per item")
    parser.add_argument("--concurrency", type=int, default=16, help="hosted requests in flight")
    parser.add_argument("--store-rows", type=int, default=100_000)
    parser.add_argument("--store-repeats", type=int, default=2)
    args = parser.parse_args()
    from sua_audit.engine import Generator

    flush_rows = inspect.signature(Generator.__init__).parameters["flush_rows"].default
    print(
        f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.2f}; "
        f"K={args.k}, concurrency {args.concurrency}; engine flush size {flush_rows} rows",
        flush=True,
    )
    runs = []
    store_results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for n in args.items:
            r = audit_run(n, args, workdir)
            runs.append(r)
            print(f"  {n} items: {r}", flush=True)
        done = [r for r in runs if r["ok"]]
        if done:
            template = sample_rows(workdir / f"cache-{done[-1]['items']}.db")
            sides: list[tuple[str, int, tuple[str, ...]]] = [
                (f"batch {flush_rows} (engine flush size)", flush_rows, ()),
                ("batch 1000", 1000, ()),
                (f"one batch of {args.store_rows}", args.store_rows, ()),
                (f"batch {flush_rows}, synchronous=NORMAL", flush_rows, ("synchronous=NORMAL",)),
                (
                    f"batch {flush_rows}, synchronous=NORMAL, cache_size 64 MB",
                    flush_rows,
                    ("synchronous=NORMAL", "cache_size=-65536"),
                ),
            ]
            for rep in range(args.store_repeats):
                order = sides[rep % len(sides) :] + sides[: rep % len(sides)]
                for i, (name, batch, pragmas) in enumerate(order):
                    path = workdir / f"store-{rep}-{i}.db"
                    r = store_pass(template, args.store_rows, batch, path, pragmas=pragmas)
                    store_results.setdefault(name, []).append(r)
                    print(f"  store {name}: {r['rows_per_s']:.0f} rows/s", flush=True)
    print()
    print(
        table(
            [
                "items",
                "requests",
                "wall s",
                "req/s",
                "peak RSS MB",
                "RSS at 25/50/75 % MB",
                "cache rows",
                "write tx",
                "write s",
                "rows/s written",
                "first / last tenth",
                "write share",
            ],
            [
                [
                    r["items"],
                    r.get("requests", "-"),
                    r.get("wall_s", "-"),
                    r.get("req_per_s", "-"),
                    r.get("maxrss_mb", "-"),
                    "/".join(f"{x:.0f}" for x in r.get("rss_quartiles_mb", [])),
                    r.get("cache_rows", "-"),
                    r.get("write_transactions", "-"),
                    r.get("write_seconds", "-"),
                    r.get("write_rows_per_s", "-"),
                    _pair(
                        r.get("write_rows_per_s_first_tenth"), r.get("write_rows_per_s_last_tenth")
                    ),
                    f"{100 * r['write_share_of_wall']:.1f} %" if r["ok"] else "-",
                ]
                for r in runs
            ],
        )
    )
    store_med = {
        name: {
            "rows": rs[0]["rows"],
            "rows_per_s": median([r["rows_per_s"] for r in rs]),
            "per_repeat": [round(r["rows_per_s"]) for r in rs],
        }
        for name, rs in store_results.items()
    }
    if store_med:
        print(f"\nstore alone, {args.store_rows} rows, median of {args.store_repeats}")
        print(
            table(
                ["batches", "rows/s", "per repeat"],
                [[k, v["rows_per_s"], v["per_repeat"]] for k, v in store_med.items()],
            )
        )
    ok = bool(runs) and all(r["ok"] for r in runs)
    largest = max((r for r in runs if r["ok"]), key=lambda r: r["items"], default=None)
    engine_batch = next(iter(store_med.values()), None)
    verdict = {
        "peak_memory": largest is not None and largest["maxrss_mb"] < TARGET_MB,
        "cache_writes_in_run": largest is not None
        and (largest["write_rows_per_s"] or 0) >= TARGET_ROWS_PER_S,
        "cache_writes_store_alone": engine_batch is not None
        and engine_batch["rows_per_s"] >= TARGET_ROWS_PER_S,
    }
    print(
        "\ntargets ("
        + (f"{largest['items']} items" if largest else "no run")
        + "): "
        + ", ".join(f"{k} {'met' if v else 'missed'}" for k, v in verdict.items())
        + f"; load average at end {os.getloadavg()[0]:.2f}"
    )
    emit(
        {
            "bench": "large_dataset",
            "k": args.k,
            "concurrency": args.concurrency,
            "engine_flush_rows": flush_rows,
            "runs": runs,
            "store_alone": store_med,
            "target_peak_mb": TARGET_MB,
            "target_rows_per_s": TARGET_ROWS_PER_S,
            "target_met": verdict,
            "ok": ok,
        }
    )
    return 0 if ok else 1


def _pair(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a:.0f} / {b:.0f}"


if __name__ == "__main__":
    sys.exit(main())
