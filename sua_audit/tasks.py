"""How an item (or one of its variants) becomes chat messages, and how answers map to labels.

The prompts are deliberately plain so that the audit measures the model, not prompt tricks.
For classification and NLI, each label is scored in its common surface forms (``positive`` and
``Positive``) and their probabilities are added: a chat model that would answer "Positive" is
still choosing that label. The instructions name the item's labels and nothing task-specific,
so one wording serves every dataset; on weak models that costs accuracy (the embedded model
scores 0.56 on the first 96 SST-2 dev items with it, 0.75 with a sentiment-specific question),
which is fine for an audit: it needs failures to find. See docs/method.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sua_audit.backends.base import Message

QA_INSTRUCTION = "Answer the question briefly, in a few words.\nQuestion: {question}"
CLASSIFY_QUESTION = "Which label fits this text best: {labels}?"
NLI_QUESTION = "What is the relation of the hypothesis to the premise: {labels}?"
CLASSIFY_INSTRUCTION = "Text: {text}\n{question} Answer with one word."
NLI_INSTRUCTION = "Premise: {premise}\nHypothesis: {hypothesis}\n{question} Answer with one word."


def build_messages(
    task: str, fields: Mapping[str, str], labels: Sequence[str] | None
) -> tuple[Message, ...]:
    """The chat messages for one variant's text fields.

    A variant's ``fields["instruction"]`` (instruction-level attacks) replaces the question
    sentence of a classification or NLI prompt; everything else stays as in the clean prompt,
    so the instruction is the only difference the model sees.
    """
    if task == "qa":
        return (Message("user", QA_INSTRUCTION.format(question=fields["input"])),)
    label_text = " or ".join(", ".join(labels or ()).rsplit(", ", 1))
    nli = task == "nli" and "premise" in fields and "hypothesis" in fields
    question = fields.get("instruction") or (NLI_QUESTION if nli else CLASSIFY_QUESTION).format(
        labels=label_text
    )
    if nli:
        content = NLI_INSTRUCTION.format(
            premise=fields["premise"], hypothesis=fields["hypothesis"], question=question
        )
    else:
        content = CLASSIFY_INSTRUCTION.format(text=fields["input"], question=question)
    return (Message("user", content),)


def surface_forms(label: str) -> list[str]:
    """The spellings of a label that count as choosing it (as-is, and capitalised)."""
    forms = [label]
    for form in (label.capitalize(), label.lower()):
        if form not in forms:
            forms.append(form)
    return forms


def choice_table(labels: Sequence[str]) -> tuple[tuple[str, ...], list[int]]:
    """All surface forms to score, and for each form the index of its label."""
    choices: list[str] = []
    owner: list[int] = []
    for i, label in enumerate(labels):
        for form in surface_forms(label):
            if form not in choices:
                choices.append(form)
                owner.append(i)
    return tuple(choices), owner


def label_logprobs(
    choice_logprobs: Sequence[float], owner: Sequence[int], n_labels: int
) -> list[float]:
    """Combine surface-form log-probabilities into one log-probability per label."""
    out = [-math.inf] * n_labels
    for lp, i in zip(choice_logprobs, owner, strict=True):
        a, b = out[i], lp
        hi = max(a, b)
        out[i] = hi if hi == -math.inf else hi + math.log(math.exp(a - hi) + math.exp(b - hi))
    return out
