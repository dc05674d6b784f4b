"""Token prices and cost estimates for hosted models.

Prices come from ``--price-in`` / ``--price-out`` (USD per million tokens) when given, else from
LiteLLM's price table when LiteLLM is installed. The table is read as the JSON file it ships,
without importing LiteLLM (seconds) and without the network. A model with no known price gets
no estimate: the run says so instead of guessing.

The estimate before a run is deliberately an upper bound: every request is priced as if no
answer were cached, prompts are sized at one token per 4 characters of item text plus the
prompt template, and every answer is priced at its full ``--max-tokens`` (QA) or at 1 token
(label log-probabilities).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sua_audit.auditing import requests_per_item
from sua_audit.config import AuditConfig
from sua_audit.dataset import DatasetInfo

_TABLE_FILE = "model_prices_and_context_window_backup.json"
#: Characters per token, a common rule of thumb for English text.
CHARS_PER_TOKEN = 4
#: Tokens of chat template (some add a default system prompt) and instruction around the
#: item text; measured 68 a call on llama.cpp's SmolLM2 template with short items.
PROMPT_OVERHEAD_TOKENS = 70
#: Tokens of a rewrite template (instructions and rules) around the text it rewrites.
REWRITE_OVERHEAD_TOKENS = 160
#: Tokens of the meaning judge's question around the two texts it compares.
JUDGE_OVERHEAD_TOKENS = 60


@dataclass(frozen=True)
class Price:
    """USD per token, and where the figure came from."""

    input: float
    output: float
    source: str

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for the given token counts."""
        return prompt_tokens * self.input + completion_tokens * self.output


@functools.cache
def _table() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for location in spec.submodule_search_locations:
        path = Path(location) / _TABLE_FILE
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
    return {}


LOCAL = "local model"
"""Price source of models that run here: free, so no estimate is printed."""


def lookup(model_spec: str, config: AuditConfig | None = None) -> Price | None:
    """The price of a model spec (``gpt-4o``, ``openai/gpt-4o``, ``litellm/anthropic/x``)."""
    if config is not None and config.price_in is not None and config.price_out is not None:
        return Price(config.price_in / 1e6, config.price_out / 1e6, "--price-in/--price-out")
    provider, _, name = model_spec.partition("/")
    if provider in ("embedded", "hf", "fake"):
        return Price(0.0, 0.0, LOCAL)
    if provider == "litellm":
        candidates = [name, name.partition("/")[2]]
    elif provider == "openai":
        candidates = [name]
    else:
        candidates = [model_spec]
    batch = config is not None and config.batch
    table = _table()
    for key in candidates:
        entry = table.get(key)
        if entry and "input_cost_per_token" in entry:
            price = Price(
                float(entry["input_cost_per_token"]),
                float(entry.get("output_cost_per_token", 0.0)),
                "LiteLLM price table",
            )
            return batch_price(price, entry) if batch else price
    return None


#: What a provider batch costs against the interactive price when the table has no batch
#: price for the model (OpenAI's published batch discount).
BATCH_DISCOUNT = 0.5


def batch_price(price: Price, entry: dict[str, Any]) -> Price:
    """The batch price of a model: the table's batch prices when it lists them, else the
    interactive price at :data:`BATCH_DISCOUNT`."""
    if "input_cost_per_token_batches" in entry:
        return Price(
            float(entry["input_cost_per_token_batches"]),
            float(entry.get("output_cost_per_token_batches", price.output * BATCH_DISCOUNT)),
            "LiteLLM price table (batch)",
        )
    return Price(
        price.input * BATCH_DISCOUNT,
        price.output * BATCH_DISCOUNT,
        f"{price.source}, batch at {BATCH_DISCOUNT:g}x",
    )


def estimate(info: DatasetInfo, config: AuditConfig, price: Price | None) -> dict[str, Any]:
    """Requests, tokens and cost of the run before it starts (no cache assumed), two ways.

    * expected — the server returns logprobs and honours ``n`` (OpenAI does): one request per
      classification variant, greedy + one ``n`` request per QA variant;
    * worst case — every fallback: a logprob call then ``k`` seeded samples per
      classification variant, a probe then ``k`` seeded samples per QA variant, every answer
      as long as ``--max-tokens``.

    Prompt length is guessed from the text (4 characters a token) plus the chat template and
    instruction; an estimate, which is why ``--max-cost`` is also enforced on real usage
    during the run.
    """
    expected_prompts = expected_completion = worst_prompts = worst_completion = 0
    requests = 0
    # A deployed system prompt goes with every request, and may be far longer than the item.
    system_tokens = 0.0
    if config.system_prompt and Path(config.system_prompt).is_file():
        system_tokens = Path(config.system_prompt).stat().st_size / CHARS_PER_TOKEN
    variants = config.k + 1
    k, max_tokens = config.samples, config.max_tokens
    for task, n_items in info.tasks.items():
        requests += requests_per_item(task, config) * n_items
        calls = n_items * variants
        avg_prompt = info.input_chars.get(task, 0) / max(n_items, 1) / CHARS_PER_TOKEN
        per_prompt = avg_prompt + PROMPT_OVERHEAD_TOKENS + system_tokens
        if task == "qa":
            expected_prompts += round(calls * 2 * per_prompt)
            expected_completion += calls * (1 + k) * max_tokens
            worst_prompts += round(calls * (2 + k) * per_prompt)
            worst_completion += calls * (2 + k) * max_tokens
        else:
            expected_prompts += round(calls * per_prompt)
            expected_completion += calls
            worst_prompts += round(calls * (2 + k) * per_prompt)
            worst_completion += calls * (1 + (1 + k) * max_tokens)
    return {
        "requests": requests,
        "prompt_tokens": expected_prompts,
        "completion_tokens": expected_completion,
        "usd": None
        if price is None
        else round(price.cost(expected_prompts, expected_completion), 6),
        "worst_case_usd": None
        if price is None
        else round(price.cost(worst_prompts, worst_completion), 6),
        "price_source": None if price is None else price.source,
    }


def rewriter_estimate(
    info: DatasetInfo, config: AuditConfig, price: Price | None
) -> dict[str, Any] | None:
    """Requests, tokens and cost of the model-written perturbations, or ``None`` without any.

    One request per item, kind and text field (NLI premise and hypothesis apart) asks for
    2n + 2 rewrites; expected rewrites are about as long as the text, worst case every
    rewrite reaches its length limit and the server ignores ``n`` (2n + 2 seeded requests).
    With ``--meaning-filter judge|both`` each rewrite is also judged in both orders (label
    scoring: one answer token). Like :func:`estimate`, nothing is assumed cached.
    """
    from sua_audit.perturbation import kind_traits
    from sua_audit.perturbation.llm import MAX_LENGTH_RATIO

    counts = Counter(kind for kind in config.plan.slots if kind_traits(kind).rewriter)
    if not counts:
        return None
    judged = config.meaning_filter in ("judge", "both")
    requests = worst_requests = prompts = completion = worst_prompts = worst_completion = 0
    for task, n_items in info.tasks.items():
        fields = 2 if task == "nli" else 1
        text = info.input_chars.get(task, 0) / max(n_items, 1) / CHARS_PER_TOKEN / fields
        limit = min(512, MAX_LENGTH_RATIO * text + 24)
        for kind, n in counts.items():
            samples = 2 * n + 2
            calls = n_items * fields
            prompt = text + REWRITE_OVERHEAD_TOKENS
            requests += calls
            worst_requests += calls * samples
            prompts += round(calls * prompt)
            worst_prompts += round(calls * samples * prompt)
            completion += round(calls * samples * (text + 8))
            worst_completion += round(calls * samples * limit)
            if judged and kind_traits(kind).meaning_checked:
                judge_calls = calls * samples * 2
                requests += judge_calls
                worst_requests += judge_calls
                prompts += round(judge_calls * (2 * text + JUDGE_OVERHEAD_TOKENS))
                worst_prompts += round(judge_calls * (2 * text + JUDGE_OVERHEAD_TOKENS))
                completion += judge_calls
                worst_completion += judge_calls
    return {
        "model": config.rewriter_model,
        "requests": requests,
        "worst_case_requests": worst_requests,
        "prompt_tokens": prompts,
        "completion_tokens": completion,
        "usd": None if price is None else round(price.cost(prompts, completion), 6),
        "worst_case_usd": None
        if price is None
        else round(price.cost(worst_prompts, worst_completion), 6),
        "price_source": None if price is None else price.source,
    }


def judge_estimate(
    info: DatasetInfo, config: AuditConfig, price: Price | None
) -> dict[str, Any] | None:
    """Requests, tokens and cost of the answer-clustering judge (``--equivalence judge``), or
    ``None`` when no judge is asked (another method, or no QA item).

    Each QA item has n = (k + 1)(1 + samples) answers; they join clusters one at a time, each
    compared with the clusters' first answers until one matches, and every comparison is two
    label-scoring requests (both orders) showing the question and both answers. Expected: a
    consistent model, each answer compared with one representative, n − 1 comparisons; worst
    case: every answer distinct, n(n − 1)/2. Answers equal after normalisation are never sent
    and verdicts are cached, so a real run usually costs less; like :func:`estimate`, nothing
    is assumed cached. Answers are counted at ``--max-tokens`` each.
    """
    n_items = info.tasks.get("qa", 0)
    if config.equivalence != "judge" or not n_items:
        return None
    n = (config.k + 1) * (1 + config.samples)
    question = info.input_chars.get("qa", 0) / n_items / CHARS_PER_TOKEN
    prompt = question + 2 * config.max_tokens + JUDGE_OVERHEAD_TOKENS
    requests = n_items * 2 * (n - 1)
    worst = n_items * 2 * (n * (n - 1) // 2)
    return {
        "model": config.equivalence_model,
        "requests": requests,
        "worst_case_requests": worst,
        "prompt_tokens": round(requests * prompt),
        "completion_tokens": requests,
        "usd": None if price is None else round(price.cost(requests * prompt, requests), 6),
        "worst_case_usd": None if price is None else round(price.cost(worst * prompt, worst), 6),
        "price_source": None if price is None else price.source,
    }
