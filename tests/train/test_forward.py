"""The differentiable label scoring equals the audit's (HFBackend) label scoring."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from sua_audit import tasks
from sua_audit.backends.base import CompletionRequest
from sua_audit.scoring import normalize_logprobs
from tests.support.models import hf_backend, load_causal_lm

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["bleak and desperate", "a very good movie , really", "it 's a charming journey ."]
LABEL_SETS = [
    ("negative", "positive"),
    ("negative", "very positive"),  # a two-token label: the second-pass path
    ("entailment", "neutral", "contradiction"),
]


def _audit_distributions(model_dir: Path, labels: tuple[str, ...]) -> list[np.ndarray]:
    """What `sua-audit run` computes for each text: backend choice scores → label softmax."""
    backend = hf_backend(model_dir, device="cpu", batch_size=2)
    choices, owner = tasks.choice_table(labels)

    async def go():
        reqs = [
            CompletionRequest(
                tasks.build_messages("classification", {"input": t}, labels), choices=choices
            )
            for t in TEXTS
        ]
        out = await asyncio.gather(*[backend.complete(r) for r in reqs])
        await backend.aclose()
        return out

    comps = asyncio.run(go())
    return [
        normalize_logprobs(tasks.label_logprobs(c.choice_logprobs, owner, len(labels)))
        for c in comps
    ]


@pytest.mark.parametrize("labels", LABEL_SETS)
def test_label_distribution_matches_the_audit(tiny_dir: Path, labels: tuple[str, ...]) -> None:
    from sua_audit.train.forward import LabelScorer

    tok, model = load_causal_lm(tiny_dir)
    scorer = LabelScorer(model, tok)
    rows = [(tasks.build_messages("classification", {"input": t}, labels), labels) for t in TEXTS]
    ours = [lp.exp().detach().numpy() for lp in scorer.label_logprobs(rows)]
    audit = _audit_distributions(tiny_dir, labels)
    for a, b in zip(ours, audit, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # A random tiny model is not uniform: the comparison is not vacuous.
    assert max(float(np.ptp(a)) for a in audit) > 1e-4


def test_prompt_ids_match_the_backend(tiny_dir: Path) -> None:
    from sua_audit.train.forward import prompt_ids

    backend = hf_backend(tiny_dir, device="cpu")
    backend.load()
    msgs = tasks.build_messages("classification", {"input": TEXTS[0]}, LABEL_SETS[0])
    try:
        assert prompt_ids(backend.tokenizer, msgs) == backend._prompt_ids(msgs)
    finally:
        asyncio.run(backend.aclose())


def test_scores_carry_gradients_to_the_weights(tiny_dir: Path) -> None:
    from sua_audit.train.forward import LabelScorer

    tok, model = load_causal_lm(tiny_dir)
    labels = LABEL_SETS[1]
    rows = [(tasks.build_messages("classification", {"input": TEXTS[1]}, labels), labels)]
    lp = LabelScorer(model, tok).label_logprobs(rows)[0]
    lp[1].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
