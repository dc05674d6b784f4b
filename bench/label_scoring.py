"""Label scoring on the embedded model: batched versus one prompt at a time versus per label.

What it measures: items/s of exact label scoring (one ``CompletionRequest`` with ``choices`` per
item, built exactly as the audit builds it: ``tasks.build_messages`` + ``tasks.choice_table``)
over the first N items of ``../shared/data/sst2_dev.jsonl`` on the embedded SmolLM2-135M.
Three sides do the same work:

* batched — a backend with ``batch_size=16``; all N requests are gathered concurrently, so the
  backend's worker forms batches of 16 requests. The backend shares each prompt between its
  labels: one forward pass over 16 left-padded prompts reads every single-token label from the
  last position (a second pass on the key/value cache only for multi-token labels);
* one at a time — a backend with ``batch_size=1``; the N requests are awaited one after another
  (the same prompt-sharing code, one prompt per forward pass);
* naive per label — one forward pass per (item, label surface form) over the full prompt plus
  that form's tokens, through the same loaded model (``backend.lm``), reading only the logits it
  needs. This is the "one forward per label" approach that prompt sharing replaces.

All models are loaded once and warmed up; then the three sides rotate (ABC, BCA, CAB, ...) for
``--repeats`` repeats and the medians are compared, so background load hits every side alike.
It also reports the largest absolute differences between the sides' choice log-probabilities
(naive per label is the reference) and whether the predicted labels agree. In float32 (the CPU
default) they agree to about 1e-5 nats; in bfloat16 rounding changes with the batch's shape.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from _common import dataset_path, emit, median, quiet_hf, read_jsonl, table

TARGET_SPEEDUP = 5.0
SIDES = ("batched", "single", "naive")
LABELS = {"batched": "batched", "single": "one at a time", "naive": "naive per label"}


def build_requests(rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[int]], list[int]]:
    """One scoring request per item, exactly as the audit builds the original variant's."""
    from sua_audit import tasks
    from sua_audit.backends import CompletionRequest

    requests, owners, n_labels = [], [], []
    for row in rows:
        labels = row["labels"]
        fields = {"input": row["input"]}
        if row.get("task") == "nli" and "premise" in row and "hypothesis" in row:
            fields["premise"], fields["hypothesis"] = row["premise"], row["hypothesis"]
        choices, owner = tasks.choice_table(labels)
        messages = tasks.build_messages(row.get("task", "classification"), fields, labels)
        requests.append(CompletionRequest(messages, choices=choices))
        owners.append(owner)
        n_labels.append(len(labels))
    return requests, owners, n_labels


def shape_stats(backend: Any, requests: list[Any], batch_size: int) -> dict[str, Any]:
    """Prompt lengths, multi-token labels and the batched side's padding efficiency.

    Batches are formed in request order, so the first ``batch_size`` requests share a batch;
    its rows are the prompts, left-padded to the longest one.
    """
    lengths = [len(backend._prompt_ids(r.messages)) for r in requests]
    real = padded = 0
    for start in range(0, len(lengths), batch_size):
        chunk = lengths[start : start + batch_size]
        real += sum(chunk)
        padded += max(chunk) * len(chunk)
    multi = sum(
        len(backend.tokenizer.encode(c, add_special_tokens=False)) > 1
        for r in requests
        for c in r.choices
    )
    return {
        "prompt_tokens_min": min(lengths),
        "prompt_tokens_max": max(lengths),
        "prompt_tokens_mean": round(sum(lengths) / len(lengths), 1),
        "multi_token_choices": multi,
        "padding_efficiency": round(real / padded, 3),
    }


async def run_batched(backend: Any, requests: list[Any]) -> tuple[float, list[list[float]]]:
    """All requests in flight at once; the worker batches them."""
    t0 = time.perf_counter()
    out = await asyncio.gather(*(backend.complete(r) for r in requests))
    return time.perf_counter() - t0, [c.choice_logprobs for c in out]


async def run_sequential(backend: Any, requests: list[Any]) -> tuple[float, list[list[float]]]:
    """One request at a time."""
    t0 = time.perf_counter()
    out = [await backend.complete(r) for r in requests]
    return time.perf_counter() - t0, [c.choice_logprobs for c in out]


def naive_scores(backend: Any, requests: list[Any]) -> tuple[list[list[float]], int]:
    """One forward pass per (request, choice) over prompt + choice; summed choice log-probs.

    Uses the loaded model directly (call after the backend has loaded). Only the logits that
    predict the choice's tokens are computed (``logits_to_keep``), which favours this side.
    Returns the scores and the number of forward passes.
    """
    torch = backend._torch
    out: list[list[float]] = []
    passes = 0
    with torch.inference_mode():
        for req in requests:
            prompt = backend._prompt_ids(req.messages)
            row = []
            for choice in req.choices:
                cont = backend.tokenizer.encode(choice, add_special_tokens=False)
                ids = torch.tensor([prompt + cont], device=backend.device)
                logits = backend.lm(input_ids=ids, logits_to_keep=len(cont) + 1).logits[0, :-1]
                passes += 1
                lp = torch.log_softmax(logits.float(), dim=-1)
                row.append(float(lp[torch.arange(len(cont)), torch.tensor(cont)].sum()))
            out.append(row)
    return out, passes


async def run_naive(backend: Any, requests: list[Any]) -> tuple[float, list[list[float]], int]:
    """The naive side, timed (the event loop has nothing else to do meanwhile)."""
    t0 = time.perf_counter()
    scores, passes = naive_scores(backend, requests)
    return time.perf_counter() - t0, scores, passes


def compare(
    a: list[list[float]], b: list[list[float]], owners: list[list[int]], n_labels: list[int]
) -> dict[str, Any]:
    """Largest choice and label log-prob differences and predicted-label agreement."""
    from sua_audit import tasks

    max_diff = max_label_diff = 0.0
    agree = 0
    for x, y, owner, k in zip(a, b, owners, n_labels, strict=True):
        max_diff = max(max_diff, *(abs(p - q) for p, q in zip(x, y, strict=True)))
        lx = tasks.label_logprobs(x, owner, k)
        ly = tasks.label_logprobs(y, owner, k)
        max_label_diff = max(max_label_diff, *(abs(p - q) for p, q in zip(lx, ly, strict=True)))
        agree += lx.index(max(lx)) == ly.index(max(ly))
    return {
        "max_abs_logprob_diff": float(f"{max_diff:.3g}"),
        "max_abs_label_logprob_diff": float(f"{max_label_diff:.3g}"),
        "same_label": agree,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from sua_audit.backends import get_backend

    rows = read_jsonl(dataset_path("sst2_dev.jsonl"), args.n)
    requests, owners, n_labels = build_requests(rows)
    n = len(requests)

    t0 = time.perf_counter()
    batched = get_backend(None, batch_size=args.batch_size, dtype=args.dtype)
    single = get_backend(None, batch_size=1, dtype=args.dtype)
    # Weights load on the first request; warm-up also lets the first passes pick kernels.
    await run_batched(batched, requests[: args.batch_size])
    await run_sequential(single, requests[:4])
    naive_scores(single, requests[:2])
    load_s = time.perf_counter() - t0
    try:
        walls: dict[str, list[float]] = {s: [] for s in SIDES}
        logprobs: dict[str, list[list[float]]] = {}
        passes: dict[str, int] = {}
        for rep in range(args.repeats):
            order = SIDES[rep % 3 :] + SIDES[: rep % 3]
            for side in order:
                if side == "naive":
                    wall, lps, passes[side] = await run_naive(single, requests)
                else:
                    backend = batched if side == "batched" else single
                    before = backend.forward_passes
                    runner = run_batched if side == "batched" else run_sequential
                    wall, lps = await runner(backend, requests)
                    passes[side] = backend.forward_passes - before
                walls[side].append(wall)
                logprobs[side] = lps
        shapes = shape_stats(batched, requests, args.batch_size)
    finally:
        await batched.aclose()
        await single.aclose()

    vs_naive = {s: compare(logprobs[s], logprobs["naive"], owners, n_labels) for s in SIDES[:2]}
    batched_vs_single = compare(logprobs["batched"], logprobs["single"], owners, n_labels)
    med = {side: median(w) for side, w in walls.items()}
    ips = {side: n / med[side] for side in med}
    speedup = ips["batched"] / ips["single"]
    speedup_naive = ips["batched"] / ips["naive"]
    per_rep = [s / b for b, s in zip(walls["batched"], walls["single"], strict=True)]
    per_rep_naive = [s / b for b, s in zip(walls["batched"], walls["naive"], strict=True)]

    print(
        f"label scoring: {n} sst2_dev items, {len(requests[0].choices)} choices each, "
        f"{args.repeats} rotated repeats, dtype {batched.dtype}, device {batched.device} "
        f"(models loaded and warmed up in {load_s:.1f} s)"
    )
    print(
        table(
            ["mode", "batch", "forward passes", "median wall s", "items/s"],
            [
                [LABELS[s], args.batch_size if s == "batched" else 1, passes[s], med[s], ips[s]]
                for s in SIDES
            ],
        )
    )
    print(
        f"prompts {shapes['prompt_tokens_min']}-{shapes['prompt_tokens_max']} tokens "
        f"(mean {shapes['prompt_tokens_mean']}); multi-token choices: "
        f"{shapes['multi_token_choices']}; batched rows: {shapes['padding_efficiency']:.0%} of "
        "the padded token positions are real tokens"
    )
    met = speedup >= TARGET_SPEEDUP
    met_naive = speedup_naive >= TARGET_SPEEDUP
    print(
        f"speed-up vs one at a time (median): {speedup:.2f}x  per repeat: "
        + ", ".join(f"{r:.2f}x" for r in per_rep)
        + f"  target >= {TARGET_SPEEDUP:g}x: {'met' if met else 'NOT met'}"
    )
    print(
        f"speed-up vs naive per label (median): {speedup_naive:.2f}x  per repeat: "
        + ", ".join(f"{r:.2f}x" for r in per_rep_naive)
        + f"  target >= {TARGET_SPEEDUP:g}x: {'met' if met_naive else 'NOT met'}"
    )
    for name, c in (
        ("batched vs naive", vs_naive["batched"]),
        ("one at a time vs naive", vs_naive["single"]),
        ("batched vs one at a time", batched_vs_single),
    ):
        worst = c["max_abs_logprob_diff"]
        print(
            f"{name}: max |choice log-prob diff| {worst:.3g} nats, max |label log-prob diff| "
            f"{c['max_abs_label_logprob_diff']:.3g} nats, same predicted label "
            f"{c['same_label']}/{n}"
            + (f"  (above tolerance {args.tol:g})" if worst > args.tol else "")
        )
    worst = max(c["max_abs_logprob_diff"] for c in (*vs_naive.values(), batched_vs_single))
    return {
        "bench": "label_scoring",
        "items": n,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "dtype": batched.dtype,
        "device": batched.device,
        "batched_items_per_s": round(ips["batched"], 2),
        "single_items_per_s": round(ips["single"], 2),
        "naive_items_per_s": round(ips["naive"], 2),
        "forward_passes": passes,
        "speedup": round(speedup, 3),
        "speedup_per_repeat": [round(r, 3) for r in per_rep],
        "speedup_vs_naive": round(speedup_naive, 3),
        "speedup_vs_naive_per_repeat": [round(r, 3) for r in per_rep_naive],
        "target_speedup": TARGET_SPEEDUP,
        "target_met": met,
        "target_met_vs_naive": met_naive,
        "agreement": {
            "batched_vs_naive": vs_naive["batched"],
            "single_vs_naive": vs_naive["single"],
            "batched_vs_single": batched_vs_single,
        },
        "max_abs_logprob_diff": worst,
        "label_agreement": batched_vs_single["same_label"] / n,
        **shapes,
        "tolerance": args.tol,
        "within_tolerance": worst <= args.tol,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="items from sst2_dev (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="rotated repeats (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="batched side (default 16)")
    parser.add_argument(
        "--dtype",
        default="auto",
        help="model dtype: auto (float32 on CPU, bf16 on a GPU that has it), bfloat16, float32",
    )
    parser.add_argument(
        "--tol", type=float, default=0.05, help="log-prob tolerance to flag (report only)"
    )
    args = parser.parse_args()
    if args.n < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--n, --repeats and --batch-size must be at least 1")
    quiet_hf()
    emit(asyncio.run(main_async(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
