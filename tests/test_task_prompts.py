"""The audited model's prompts, word for word.

Cached answers and recorded evidence are keyed on the exact prompt text, so the shipped task
templates must render exactly what the Python strings rendered before them (pinned below).
"""

from __future__ import annotations

import pytest

from sua_audit.tasks import build_messages

NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")
QA_HEAD = "Answer the question briefly, in a few words.\nQuestion: "
ONE_WORD = "? Answer with one word."

#: (task, fields, labels) → the user message, as sua-audit has always sent it.
PINNED = [
    ("qa", {"input": "What is the capital of France?"}, None,
     QA_HEAD + "What is the capital of France?"),
    # Text is sent as-is: trailing blanks kept, template syntax in the data not interpreted.
    ("qa", {"input": "Who wrote {{ title }} in 1851?  \n"}, None,
     QA_HEAD + "Who wrote {{ title }} in 1851?  \n"),
    ("classification", {"input": "Is it?"}, ("yes",),
     "Text: Is it?\nWhich label fits this text best: yes" + ONE_WORD),
    ("classification", {"input": "A warm, funny film."}, ("negative", "positive"),
     "Text: A warm, funny film.\nWhich label fits this text best: negative or positive"
     + ONE_WORD),
    ("classification", {"input": "Stocks fell sharply."}, ("World", "Sports", "Business"),
     "Text: Stocks fell sharply.\nWhich label fits this text best: World, Sports or Business"
     + ONE_WORD),
    ("classification", {"input": "x"}, ("a", "b", "c", "d"),
     "Text: x\nWhich label fits this text best: a, b, c or d" + ONE_WORD),
    # A label with ", " in it: the last comma is still the one that becomes "or".
    ("classification", {"input": "x"}, ("up, down", "left"),
     "Text: x\nWhich label fits this text best: up, down or left" + ONE_WORD),
    ("nli", {"input": "P H", "premise": "A man sleeps.", "hypothesis": "A man is awake."}, NLI3,
     "Premise: A man sleeps.\nHypothesis: A man is awake.\nWhat is the relation of the "
     "hypothesis to the premise: entailment, neutral or contradiction" + ONE_WORD),
    # NLI given as one text (no separate premise and hypothesis): the classification prompt.
    ("nli", {"input": "A man sleeps. A man is awake."}, NLI2,
     "Text: A man sleeps. A man is awake.\nWhich label fits this text best: entailment or "
     "not_entailment" + ONE_WORD),
    # Instruction attacks replace the question sentence and nothing else.
    ("classification",
     {"input": "A warm, funny film.", "instruction": "As a critic, say: negative or positive?"},
     ("negative", "positive"),
     "Text: A warm, funny film.\nAs a critic, say: negative or positive? Answer with one word."),
    ("nli",
     {"input": "P H", "premise": "A.", "hypothesis": "B.",
      "instruction": "Does B follow from A: entailment or not_entailment?"},
     NLI2,
     "Premise: A.\nHypothesis: B.\nDoes B follow from A: entailment or not_entailment? Answer "
     "with one word."),
    ("classification", {"input": "x", "instruction": ""}, ("a", "b"),
     "Text: x\nWhich label fits this text best: a or b" + ONE_WORD),
]  # fmt: skip


@pytest.mark.parametrize(("task", "fields", "labels", "expected"), PINNED)
def test_the_default_prompts_are_byte_for_byte_the_pinned_ones(
    task: str, fields: dict[str, str], labels: tuple[str, ...] | None, expected: str
) -> None:
    (message,) = build_messages(task, fields, labels)
    assert message.role == "user"
    assert message.content == expected
