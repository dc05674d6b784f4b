"""The transformers backend on a tiny randomly initialised model and on the embedded model.

The tiny model reuses the embedded model's tokenizer (it ships with the package) and random
weights, so these tests check the batching arithmetic, not answer quality.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from sua_audit.backends.base import CompletionRequest, GenerationParams, Message
from tests.support.models import hf_backend, tiny_llama_with_tokenizer_of

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Path:
    return tiny_llama_with_tokenizer_of(tmp_path_factory.mktemp("tiny"), embedded_dir)


def _msgs(text: str) -> tuple[Message, ...]:
    return (Message("user", text),)


def _manual_logprob(backend, messages, choice: str) -> float:
    """Unbatched reference: full-vocabulary log-softmax over a single sequence."""
    prompt = backend._prompt_ids(messages)
    cont = backend.tokenizer.encode(choice, add_special_tokens=False)
    ids = torch.tensor([prompt + cont])
    with torch.inference_mode():
        logits = backend.lm(input_ids=ids).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return float(sum(lp[len(prompt) + j - 1, t] for j, t in enumerate(cont)))


def test_batched_choice_scores_match_one_at_a_time(tiny_dir: Path) -> None:
    backend = hf_backend(tiny_dir, batch_size=8)
    texts = ["short", "a much longer prompt with many more words in it to pad", "mid length one"]
    choices = ("negative", "positive", "not_entailment")

    async def go():
        reqs = [CompletionRequest(_msgs(t), choices=choices) for t in texts]
        out = await asyncio.gather(*[backend.complete(r) for r in reqs])
        await backend.aclose()
        return out

    results = asyncio.run(go())
    # pass 1: the three prompts; pass 2: the multi-token "not_entailment" on their cached prompts
    assert backend.forward_passes == 2
    for text, res in zip(texts, results, strict=True):
        assert res.choice_logprobs is not None and len(res.choice_logprobs) == 3
        for choice, lp in zip(choices, res.choice_logprobs, strict=True):
            assert lp == pytest.approx(_manual_logprob(backend, _msgs(text), choice), abs=1e-3)


def test_single_token_labels_take_one_pass_per_batch(tiny_dir: Path) -> None:
    backend = hf_backend(tiny_dir, batch_size=8)
    texts = [f"review number {i} " * (i + 1) for i in range(6)]
    choices = ("negative", "positive")  # one token each in this tokenizer

    async def go():
        reqs = [CompletionRequest(_msgs(t), choices=choices) for t in texts]
        out = await asyncio.gather(*[backend.complete(r) for r in reqs])
        await backend.aclose()
        return out

    results = asyncio.run(go())
    assert backend.forward_passes == 1
    for text, res in zip(texts, results, strict=True):
        for choice, lp in zip(choices, res.choice_logprobs or [], strict=True):
            assert lp == pytest.approx(_manual_logprob(backend, _msgs(text), choice), abs=1e-3)


def test_weights_load_on_first_request_only(tiny_dir: Path) -> None:
    backend = hf_backend(tiny_dir)
    ident = backend.identity()
    assert backend.load_seconds is None and not hasattr(backend, "lm")
    asyncio.run(backend.aclose())  # closing an unloaded backend is a no-op
    assert ident["dtype"] == "float32" and ident["weights"].startswith("sha256:")


def test_seeded_sampling_ignores_batch_company(tiny_dir: Path) -> None:
    backend = hf_backend(tiny_dir, batch_size=8)
    target = CompletionRequest(
        _msgs("tell me something"),
        GenerationParams(temperature=1.0, max_tokens=12, seed=7),
        sample_index=1,
    )
    others = [
        CompletionRequest(
            _msgs(f"other prompt number {i} " * (i + 1)), GenerationParams(1.0, 12, i)
        )
        for i in range(5)
    ]

    async def go():
        alone = await backend.complete(target)
        crowd = await asyncio.gather(*[backend.complete(r) for r in [*others, target]])
        other_seed = await backend.complete(
            CompletionRequest(target.messages, GenerationParams(1.0, 12, 8), sample_index=1)
        )
        await backend.aclose()
        return alone, crowd[-1], other_seed

    alone, in_crowd, other_seed = asyncio.run(go())
    assert alone.text == in_crowd.text
    assert other_seed.text != alone.text  # the seed matters (random weights: ~uniform tokens)
    assert alone.completion_tokens <= 12


def test_a_later_round_of_samples_continues_the_seeded_sequence(tiny_dir: Path) -> None:
    """Adaptive sampling's second round (sample_index = 1 + m, n = k - m) draws answers m..k-1
    of the sequence a single request for all k would draw."""
    backend = hf_backend(tiny_dir, batch_size=8)
    params = GenerationParams(temperature=1.0, max_tokens=8, seed=3)
    msgs = _msgs("tell me something")

    async def go():
        full = await backend.complete(CompletionRequest(msgs, params, sample_index=1, n=5))
        head = await backend.complete(CompletionRequest(msgs, params, sample_index=1, n=3))
        tail = await backend.complete(CompletionRequest(msgs, params, sample_index=4, n=2))
        await backend.aclose()
        return full, head, tail

    full, head, tail = asyncio.run(go())
    assert full.texts is not None and head.texts is not None and tail.texts is not None
    assert [*head.texts, *tail.texts] == full.texts
    assert len(set(full.texts)) > 1  # the draws differ, so the equality says something


def test_greedy_matches_generate(tiny_dir: Path) -> None:
    backend = hf_backend(tiny_dir)
    req = CompletionRequest(_msgs("hello there"), GenerationParams(0.0, 8, None))

    async def go():
        res = await backend.complete(req)
        await backend.aclose()
        return res

    res = asyncio.run(go())
    ids = torch.tensor([backend._prompt_ids(req.messages)])
    with torch.inference_mode():
        ref = backend.lm.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    ref_ids = ref[0, ids.shape[1] :].tolist()
    if 2 in ref_ids:
        ref_ids = ref_ids[: ref_ids.index(2)]
    assert res.text == backend.tokenizer.decode(ref_ids, skip_special_tokens=True)


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    from sua_audit.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="config.json not found"):
        hf_backend(tmp_path / "nope")


def test_embedded_model_prefers_the_right_sentiment(embedded_dir: Path) -> None:
    """Sanity, not exact numbers: a clearly positive and a clearly negative text."""
    from sua_audit import tasks
    from sua_audit.backends import get_backend

    backend = get_backend(None)
    choices, owner = tasks.choice_table(["negative", "positive"])

    async def go():
        out = []
        for text in ["I loved it, a wonderful and joyful film.", "Terrible, boring and awful."]:
            msgs = tasks.build_messages("classification", {"input": text}, ["negative", "positive"])
            out.append(await backend.complete(CompletionRequest(msgs, choices=choices)))
        await backend.aclose()
        return out

    pos, neg = asyncio.run(go())
    lp_pos = tasks.label_logprobs(pos.choice_logprobs, owner, 2)
    lp_neg = tasks.label_logprobs(neg.choice_logprobs, owner, 2)
    assert all(math.isfinite(x) for x in lp_pos + lp_neg)
    # the positive text moves mass towards "positive" relative to the negative text
    assert lp_pos[1] - lp_pos[0] > lp_neg[1] - lp_neg[0]


def test_each_request_keeps_its_own_max_tokens_in_a_shared_batch(tiny_dir: Path) -> None:
    backend = hf_backend(tiny_dir, batch_size=8)
    short = CompletionRequest(_msgs("short answer please"), GenerationParams(1.0, 3, 5), n=2)
    long = CompletionRequest(_msgs("a longer answer please"), GenerationParams(1.0, 20, 6), n=2)

    async def go():
        alone = await backend.complete(short)
        both = await asyncio.gather(backend.complete(long), backend.complete(short))
        await backend.aclose()
        return alone, both

    alone, (long_out, short_out) = asyncio.run(go())
    assert backend.generate_calls == 2  # the pair really shared one generate call
    assert short_out.texts == alone.texts  # cut to its own limit, as if it ran alone
    assert short_out.completion_tokens <= 2 * 3
    assert long_out.completion_tokens > 2 * 3  # random weights rarely stop early
