"""The bootstrap without per-resample sorting, its grouped form, and the streaming reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sua_audit.evaluation import metrics as M
from sua_audit.evaluation.bootstrap import iter_resample_indices
from sua_audit.evaluation.core import collect, resampled_values
from tests.evaluation.test_cli import fake_run  # noqa: F401  (the fixture)


def _case(n: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    clean = (rng.random(n) < 0.3).astype(float)
    fail = {"clean": clean, "worst_case": np.maximum(clean, rng.random(n) < 0.2)}
    scores = {
        "continuous": rng.random(n) + 0.3 * clean,
        "tied": np.round(rng.random(n) * 4) / 4,
        "constant": np.zeros(n),
    }
    return scores, fail


def _run(n: int, seed: int, grouped: bool) -> dict[Any, np.ndarray]:
    scores, fail = _case(n, seed)
    correct = 1.0 - fail["clean"]
    blocks = iter_resample_indices(n, 200, seed)
    return resampled_values(
        scores, fail, correct, 1.0 - fail["worst_case"], correct, blocks, grouped=grouped
    )


def test_resamples_rebuilt_from_counts_equal_the_metrics_of_the_resamples_bit_for_bit() -> None:
    n, seed = 400, 5
    scores, fail = _case(n, seed)
    got = _run(n, seed, grouped=False)
    (idx,) = list(iter_resample_indices(n, 200, seed))
    functions = {
        "auroc": M.auroc,
        "auprc": M.auprc,
        "prr": M.prr,
        "aurc": M.aurc,
        "selective_accuracy_at_80": lambda s, f: M.selective_accuracy(s, f, 0.8),
    }
    for label, f in fail.items():
        for name, s in scores.items():
            for metric, fn in functions.items():
                want = np.asarray(fn(s[idx], f[idx]))
                assert np.array_equal(got[(label, name, metric)], want, equal_nan=True), (
                    label,
                    name,
                    metric,
                )


def test_grouped_metrics_equal_the_item_wise_ones() -> None:
    """Runs above MAX_RESAMPLED_SLOTS use the per-tie-group sums; tolerance 1e-12."""
    item_wise = _run(3000, 1, grouped=False)
    grouped = _run(3000, 1, grouped=True)
    assert item_wise.keys() == grouped.keys()
    for key, want in item_wise.items():
        np.testing.assert_allclose(grouped[key], want, rtol=0, atol=1e-12, err_msg=str(key))


def test_the_streaming_reader_gives_the_items_of_the_rows(fake_run: Path) -> None:  # noqa: F811
    from sua_audit.evaluation.correctness import Grader
    from sua_audit.results import iter_results, read_results, read_summary

    summary = read_summary(fake_run)
    rows = read_results(fake_run, summary)
    assert list(iter_results(fake_run, summary)) == rows
    listed = collect(rows, Grader("contains"))
    streamed = collect(iter_results(fake_run, summary), Grader("contains"))
    assert streamed.ids == listed.ids and streamed.family == listed.family
    for name in ("sensitivity", "entropy", "correct", "robust"):
        assert np.array_equal(getattr(streamed, name), getattr(listed, name))
    assert streamed.raw.keys() == listed.raw.keys()
    assert all(np.array_equal(streamed.raw[k], listed.raw[k]) for k in listed.raw)
    assert streamed.kinds() == listed.kinds()
    assert all(
        np.array_equal(streamed.kind_values(k), listed.kind_values(k)) for k in listed.kinds()
    )
    assert all(np.array_equal(a, b) for a, b in zip(streamed.dist, listed.dist, strict=True))
