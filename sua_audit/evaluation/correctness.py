"""When is a QA answer right? Containment, normalised exact match, token F1, or a judge model.

Label tasks (classification, NLI) are always graded by the label (the prediction is in the
gold label set); the rule chosen here applies to free-text QA answers:

* ``contains`` (the default, :data:`DEFAULT_RULE`) — some gold answer is given inside the
  answer: its normalised tokens appear as a whole-token run in the answer's first sentence,
  not negated, not an echo of the question, not one item of a candidate list or an "or"
  hedge (:func:`sua_audit.scoring.qa.answer_contains`). Exact match always counts.
  "The capital of France is Paris." is right against gold "Paris";
* ``exact`` — the normalised answer equals some normalised gold answer (SQuAD-style
  normalisation, :func:`sua_audit.scoring.normalize_answer`); what ``run`` records;
* ``f1`` — the best token F1 against any gold answer is at least a threshold (default 0.5),
  recorded as ``f1>=0.5``;
* ``judge`` — a judge model is asked whether the answer is correct given the gold answers and
  the answer counts as right when P(yes) ≥ 0.5; recorded as ``judge:<model>``. Judge calls go
  through the request cache like every other model call.

On 166 hand-labelled answers (``tests/evaluation/data/qa_hand_labels.jsonl``: 126 real
SmolLM2-135M answers and 40 hand-written hard cases; ``bench/qa_grading.py``) ``contains``
agrees with the labels on 0.898 of them, ``exact`` on 0.813 and ``f1>=0.5`` on 0.753; on the
126 real answers alone the gain over ``exact`` is small (0.913 against 0.905). See
docs/benchmarks.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sua_audit.errors import ConfigError
from sua_audit.scoring.qa import answer_contains, answer_matches, normalize_answer

RULES = ("contains", "exact", "f1", "judge")
DEFAULT_RULE = "contains"
"""The QA grading rule used when none is given."""
DEFAULT_F1_THRESHOLD = 0.5

JUDGE_PROMPT = (
    "Question: {question}\n"
    "Correct answers: {golds}\n"
    "Proposed answer: {answer}\n"
    "Does the proposed answer mean the same as one of the correct answers? "
    "Answer with one word: yes or no."
)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between two answers after normalisation (0 when either is empty)."""
    p = normalize_answer(prediction).split()
    g = normalize_answer(gold).split()
    if not p or not g:
        return 0.0
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision = common / len(p)
    recall = common / len(g)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    """Highest token F1 against any gold answer (0 without golds)."""
    return max((token_f1(prediction, g) for g in golds), default=0.0)


def grade_answer(
    prediction: str | None,
    golds: Sequence[str],
    rule: str = DEFAULT_RULE,
    *,
    question: str | None = None,
    f1_threshold: float = DEFAULT_F1_THRESHOLD,
) -> bool:
    """Whether a QA answer is right under ``contains``, ``exact`` or ``f1`` (no model calls).

    Args:
        prediction: The model's (extracted) answer; ``None`` counts as empty.
        golds: Acceptable gold answers.
        rule: ``contains``, ``exact`` or ``f1`` (``judge`` needs :class:`Grader`).
        question: The question (``contains`` ignores golds the question already names).
        f1_threshold: Token-F1 threshold of ``f1``.

    Raises:
        ConfigError: For another rule.
    """
    answer = prediction or ""
    if rule == "contains":
        return answer_contains(answer, golds, question=question)
    if rule == "exact":
        return answer_matches(answer, golds)
    if rule == "f1":
        return best_f1(answer, golds) >= f1_threshold - 1e-12
    raise ConfigError(f"grade_answer rule must be contains, exact or f1, got {rule!r}.")


class Grader:
    """Grades QA answers by one rule; label tasks by the label."""

    def __init__(
        self,
        rule: str = DEFAULT_RULE,
        *,
        f1_threshold: float = DEFAULT_F1_THRESHOLD,
        judge_model: str | None = None,
        cache: str | None = None,
    ) -> None:
        if rule not in RULES:
            raise ConfigError(f"--correctness must be one of {', '.join(RULES)}, got {rule!r}.")
        if not 0.0 < f1_threshold <= 1.0:
            raise ConfigError(f"--f1-threshold must be in (0, 1], got {f1_threshold}.")
        if rule == "judge" and not judge_model:
            raise ConfigError("--correctness judge needs --judge-model (e.g. gpt-4o-mini).")
        self.rule = rule
        self.f1_threshold = f1_threshold
        self.judge_model = judge_model
        self.cache = cache
        self._judged: dict[tuple[str, str, tuple[str, ...]], bool] = {}

    @property
    def name(self) -> str:
        """The rule as evaluation.json records it."""
        if self.rule == "f1":
            return f"f1>={self.f1_threshold:g}"
        if self.rule == "judge":
            return f"judge:{self.judge_model}"
        return self.rule

    def prepare(self, rows: Iterable[dict[str, Any]]) -> None:
        """Ask the judge about every QA answer at once (batched, cached); no-op otherwise."""
        if self.rule != "judge":
            return
        wanted = []
        for row in rows:
            if row.get("task") != "qa" or row.get("status") != "ok" or not row.get("gold"):
                continue
            golds = tuple(row["gold"])
            for v in row.get("variants", ()):
                key = (row["input"], v.get("prediction") or "", golds)
                if key not in self._judged:
                    wanted.append(key)
        wanted = list(dict.fromkeys(wanted))
        if wanted:
            self._judged.update(zip(wanted, _judge(wanted, self), strict=True))

    def qa_correct(self, question: str, prediction: str | None, golds: Sequence[str]) -> bool:
        """Whether a QA answer is right under this rule."""
        answer = prediction or ""
        if self.rule != "judge":
            return grade_answer(
                answer, golds, self.rule, question=question, f1_threshold=self.f1_threshold
            )
        key = (question, answer, tuple(golds))
        if key not in self._judged:
            self._judged.update(zip([key], _judge([key], self), strict=True))
        return self._judged[key]


def _judge(keys: list[tuple[str, str, tuple[str, ...]]], grader: Grader) -> list[bool]:
    """P(yes) ≥ 0.5 per (question, answer, golds), from label scores of the judge model."""
    import asyncio

    from sua_audit import paths, tasks
    from sua_audit.backends import get_backend
    from sua_audit.backends.base import CompletionRequest, GenerationParams, Message
    from sua_audit.engine import Generator
    from sua_audit.errors import RequestFailed
    from sua_audit.store import Store

    labels = ["yes", "no"]
    choices, owner = tasks.choice_table(labels)
    backend = get_backend(grader.judge_model)
    store = Store.open(grader.cache or paths.default_cache_path())
    requests = [
        CompletionRequest(
            (
                Message(
                    "user",
                    JUDGE_PROMPT.format(
                        question=q, golds="; ".join(g), answer=a if a else "(no answer)"
                    ),
                ),
            ),
            GenerationParams(temperature=0.0, max_tokens=4),
            choices=choices,
        )
        for q, a, g in keys
    ]

    async def go() -> list[Any]:
        gen = Generator(backend, store)
        try:
            return await gen.generate_many(requests)
        finally:
            gen.flush()
            await backend.aclose()

    try:
        answers = asyncio.run(go())
    finally:
        store.close()
    out = []
    for ans in answers:
        if isinstance(ans, RequestFailed) or not ans.choice_logprobs:
            out.append(False)
            continue
        yes, no = tasks.label_logprobs(ans.choice_logprobs, owner, 2)
        hi = max(yes, no)
        p_yes = (
            0.0
            if hi == -math.inf
            else math.exp(yes - hi) / (math.exp(yes - hi) + math.exp(no - hi))
        )
        out.append(p_yes >= 0.5)
    return out
