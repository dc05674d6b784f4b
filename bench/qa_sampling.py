"""Local QA sampling throughput on the embedded model: batch size 16 versus 1.

What it measures: generated tokens per second (sum of ``completion_tokens`` over every answer /
wall time) for the requests an audit makes on QA items. For each of the first N questions of
``../shared/data/truthfulqa_dev.jsonl`` it builds, as ``sua_audit.auditing`` does for the original
variant, one greedy request and one request for all k samples (``n=k``, temperature 0.7,
``max_tokens`` 32, run seed 0; the backend seeds answer i with ``sample_seed(seed, i)``), with
``tasks.build_messages``. A greedy request is one row of a ``generate`` call; a sampling request
is k rows.

* batched — a backend with ``batch_size=16`` (rows); a chunk's requests are gathered
  concurrently and the worker runs them as one ``generate`` call;
* one at a time — a backend with ``batch_size=1``; requests are awaited one after another, so a
  ``generate`` call holds one greedy row or one request's k sample rows (a request's samples are
  never split).

Both backends are loaded once and warmed up. The requests are split into chunks of at most 16
rows, filled the way the backend's worker fills a batch (in order; a request that does not fit
waits for a later chunk). Each chunk runs on both sides back to back, the order alternating
(AB, BA, ...), so each chunk is one paired measurement under the same background load. The
headline ratio is the median of the per-chunk tokens/s ratios; the whole-pass ratio (total
tokens / total wall on each side) is reported too.

Sampling is seeded per answer, so both sides should produce the same texts; the number of
identical answers is reported. In float32 (the CPU default) they should all agree; in bfloat16
rounding varies with batch shape and padding, which can change a greedy or sampled token.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from _common import dataset_path, emit, median, quiet_hf, read_jsonl, table


def build_requests(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[Any]:
    """Greedy + one request for k seeded samples per question, as ``sua_audit.auditing`` does."""
    from sua_audit import tasks
    from sua_audit.backends import CompletionRequest, GenerationParams

    greedy = GenerationParams(temperature=0.0, max_tokens=args.max_tokens)
    sampling = GenerationParams(
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
    )
    requests = []
    for row in rows:
        messages = tasks.build_messages("qa", {"input": row["input"]}, None)
        requests.append(CompletionRequest(messages, greedy))
        if args.samples > 0:
            requests.append(CompletionRequest(messages, sampling, sample_index=1, n=args.samples))
    return requests


def chunk_requests(requests: list[Any], batch_size: int) -> list[list[Any]]:
    """Chunks of at most ``batch_size`` rows, filled as the worker fills a batch."""
    rest = list(requests)
    chunks = []
    while rest:
        chunk, rows, later = [], 0, []
        for req in rest:
            weight = max(1, req.n)
            if not chunk or rows + weight <= batch_size:
                chunk.append(req)
                rows += weight
            else:
                later.append(req)
        chunks.append(chunk)
        rest = later
    return chunks


def answers(completion: Any) -> list[str | None]:
    """Every answer of a completion (``texts`` for n > 1)."""
    return list(completion.texts) if completion.texts else [completion.text]


async def run_batched(backend: Any, requests: list[Any]) -> tuple[float, list[Any]]:
    """All requests in flight at once; the worker batches them."""
    t0 = time.perf_counter()
    out = await asyncio.gather(*(backend.complete(r) for r in requests))
    return time.perf_counter() - t0, list(out)


async def run_sequential(backend: Any, requests: list[Any]) -> tuple[float, list[Any]]:
    """One request at a time."""
    t0 = time.perf_counter()
    out = [await backend.complete(r) for r in requests]
    return time.perf_counter() - t0, out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from sua_audit.backends import CompletionRequest, GenerationParams, get_backend

    rows = read_jsonl(dataset_path("truthfulqa_dev.jsonl"), args.n)
    requests = build_requests(rows, args)
    chunks = chunk_requests(requests, args.batch_size)

    t0 = time.perf_counter()
    batched = get_backend(None, batch_size=args.batch_size, dtype=args.dtype)
    single = get_backend(None, batch_size=1, dtype=args.dtype)
    try:
        # Weights load on the first request; the first generate calls also pick kernels.
        warm = [CompletionRequest(r.messages, GenerationParams(max_tokens=4)) for r in requests[:4]]
        await run_batched(batched, warm)
        await run_sequential(single, warm[:1])
        load_s = time.perf_counter() - t0

        # Pair the sides chunk by chunk: each chunk is one batch's worth of rows, run batched
        # and one at a time back to back (order alternating), so every chunk gives one paired
        # ratio measured under the same background load.
        walls: dict[str, list[float]] = {"batched": [], "single": []}
        tokens: dict[str, list[int]] = {"batched": [], "single": []}
        calls = {"batched": 0, "single": 0}
        texts: dict[str, list[str | None]] = {"batched": [], "single": []}
        step = 0
        for rep in range(args.repeats):
            for chunk in chunks:
                order = ("batched", "single") if step % 2 == 0 else ("single", "batched")
                step += 1
                for side in order:
                    backend = batched if side == "batched" else single
                    before = backend.generate_calls
                    runner = run_batched if side == "batched" else run_sequential
                    wall, out = await runner(backend, chunk)
                    walls[side].append(wall)
                    tokens[side].append(sum(c.completion_tokens for c in out))
                    if rep == 0:
                        calls[side] += backend.generate_calls - before
                        for c in out:
                            texts[side].extend(answers(c))
    finally:
        await batched.aclose()
        await single.aclose()

    tps = {s: sum(tokens[s]) / sum(walls[s]) for s in walls}
    ratio_total = tps["batched"] / tps["single"]
    pair_ratios = [
        (tb / wb) / (ts / ws)
        for tb, wb, ts, ws in zip(
            tokens["batched"], walls["batched"], tokens["single"], walls["single"], strict=True
        )
    ]
    ratio = median(pair_ratios)
    same = sum(a == b for a, b in zip(texts["batched"], texts["single"], strict=True))
    n_answers = len(texts["batched"])
    n_rows = sum(max(1, r.n) for r in requests)
    per_pass = {s: sum(tokens[s]) // args.repeats for s in tokens}
    wall_pass = {s: sum(walls[s]) / args.repeats for s in walls}

    print(
        f"QA sampling: {args.n} truthfulqa_dev questions x (1 greedy + {args.samples} samples) = "
        f"{len(requests)} requests, {n_rows} rows; max_tokens {args.max_tokens}, "
        f"T={args.temperature}, dtype {batched.dtype}; {len(chunks)} paired chunks of <= "
        f"{args.batch_size} rows (models loaded and warmed up in {load_s:.1f} s)"
    )
    print(
        table(
            ["mode", "batch", "generate calls", "tokens/pass", "wall s/pass", "tokens/s"],
            [
                [
                    "batched",
                    args.batch_size,
                    calls["batched"],
                    per_pass["batched"],
                    wall_pass["batched"],
                    tps["batched"],
                ],
                [
                    "one at a time",
                    1,
                    calls["single"],
                    per_pass["single"],
                    wall_pass["single"],
                    tps["single"],
                ],
            ],
        )
    )
    print(
        f"ratio batched/one-at-a-time tokens/s: median of paired chunks {ratio:.2f}x "
        f"(chunks: {', '.join(f'{r:.2f}' for r in pair_ratios)}); whole pass {ratio_total:.2f}x"
    )
    print(f"identical answers on both sides: {same}/{n_answers}")
    return {
        "bench": "qa_sampling",
        "questions": args.n,
        "requests": len(requests),
        "rows": n_rows,
        "chunks": len(chunks),
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "dtype": batched.dtype,
        "max_tokens": args.max_tokens,
        "generate_calls": calls,
        "batched_tokens_per_s": round(tps["batched"], 2),
        "single_tokens_per_s": round(tps["single"], 2),
        "batched_tokens": per_pass["batched"],
        "single_tokens": per_pass["single"],
        "batched_wall_s": round(wall_pass["batched"], 2),
        "single_wall_s": round(wall_pass["single"], 2),
        "ratio": round(ratio, 3),
        "ratio_whole_pass": round(ratio_total, 3),
        "ratio_per_chunk": [round(r, 3) for r in pair_ratios],
        "identical_answers": same,
        "answers": n_answers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="questions (default 16)")
    parser.add_argument("--samples", type=int, default=5, help="samples per question (default 5)")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over all chunks (default 1)")
    parser.add_argument("--batch-size", type=int, default=16, help="batched side (default 16)")
    parser.add_argument(
        "--dtype",
        default="auto",
        help="model dtype: auto (float32 on CPU, bf16 on a GPU that has it), bfloat16, float32",
    )
    args = parser.parse_args()
    if min(args.n, args.repeats, args.batch_size, args.max_tokens) < 1 or args.samples < 0:
        parser.error("--n, --repeats, --batch-size and --max-tokens must be at least 1")
    quiet_hf()
    emit(asyncio.run(main_async(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
