"""The audited model's prompts, word for word.

Cached answers and recorded evidence are keyed on the exact prompt text, so the shipped task
templates must render exactly what the Python strings rendered before them (pinned below).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sua_audit.backends.base import CompletionRequest
from sua_audit.backends.fake import FakeBackend
from sua_audit.errors import ConfigError
from sua_audit.prompting import PromptLibrary
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


# --------------------------------------------------------------------------------------------
# Auditing the model as deployed: --system-prompt, --task-template, task templates in
# --prompts-dir. Runs in-process on the fake backend, which records every request.
# --------------------------------------------------------------------------------------------

ITEMS = [
    {"id": "c1", "task": "classification", "input": "A warm, funny film.",
     "labels": ["negative", "positive"], "label": "positive"},
    {"id": "n1", "task": "nli", "input": "A man sleeps. A man is awake.",
     "premise": "A man sleeps.", "hypothesis": "A man is awake.",
     "labels": ["entailment", "neutral", "contradiction"], "label": "contradiction"},
    {"id": "q1", "task": "qa", "input": "What is the capital of France?", "answers": ["Paris"]},
]  # fmt: skip


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    return path


def _audit(
    dataset: Path, tmp_path: Path, out: str, **options: Any
) -> tuple[dict[str, Any], FakeBackend]:
    from sua_audit.runner import audit, make_config

    options = {"model": "fake/echo", "perturbations": "typo:1", "samples": 2, **options}
    backend = FakeBackend()
    summary = audit(
        make_config(dataset, **options),
        cache_path=tmp_path / "cache.db",
        out_dir=tmp_path / out,
        backend=backend,
    )
    return summary, backend


def _user(request: CompletionRequest) -> str:
    return request.messages[-1].content


def test_the_system_prompt_goes_to_every_audited_request_and_never_to_the_rewriter(
    dataset: Path, tmp_path: Path
) -> None:
    system = tmp_path / "deployed.txt"
    system.write_text("You are Acme's support assistant. Be brief.\n")
    summary, backend = _audit(
        dataset,
        tmp_path,
        "run",
        system_prompt=str(system),
        # The audited model rewrites and judges too: one backend sees every request.
        rewriter_model="fake/echo",
        perturbations="paraphrase:1,typo:1,instruction:1",
        meaning_filter="both",
    )
    rewriter = [r for r in backend.history if _user(r).startswith(("Rewrite", "Do these"))]
    audited = [r for r in backend.history if r not in rewriter]
    assert rewriter and audited
    assert all(m.role == "user" for r in rewriter for m in r.messages)
    for request in audited:
        first, user = request.messages
        assert (first.role, first.content) == (
            "system",
            "You are Acme's support assistant. Be brief.",
        )
        assert user.role == "user"
    # An instruction attack still reaches the audited prompt, after the system message.
    assert any("Which label fits this text best" not in _user(r) for r in audited if r.choices)
    recorded = summary["prompts"]
    assert recorded["system_prompt"] == {
        "path": str(system),
        "sha256": hashlib.sha256(system.read_bytes()).hexdigest(),
    }
    assert recorded["task_template"] is None
    assert set(recorded["task"]) == {"qa", "classification", "nli"}
    assert recorded["task"]["qa"].startswith("task/qa@")
    assert summary["config"]["system_prompt"] == str(system.resolve())


def test_the_system_prompt_is_part_of_the_cache_key(dataset: Path, tmp_path: Path) -> None:
    plain, _ = _audit(dataset, tmp_path, "plain")
    system = tmp_path / "system.txt"
    system.write_text("Answer as a pirate would.")
    first, backend = _audit(dataset, tmp_path, "first", system_prompt=str(system))
    assert first["model_calls"] == plain["model_calls"] > 0  # every request is a new one
    assert first["cache_hits"] == 0
    again, backend = _audit(dataset, tmp_path, "again", system_prompt=str(system))
    assert again["model_calls"] == 0 and not backend.history  # the same prompt: all cached
    assert again["cache_hits"] == first["model_calls"]
    system.write_text("Answer as a poet would.")
    other, _ = _audit(dataset, tmp_path, "other", system_prompt=str(system))
    assert other["model_calls"] == first["model_calls"] and other["cache_hits"] == 0
    assert (
        other["prompts"]["system_prompt"]["sha256"] != first["prompts"]["system_prompt"]["sha256"]
    )


def test_a_task_template_replaces_the_prompt_of_every_item(dataset: Path, tmp_path: Path) -> None:
    template = tmp_path / "support.j2"
    template.write_text(
        "{% if form == 'qa' %}Customer question: {{ input }}"
        "{% elif form == 'nli' %}Claim: {{ premise }} / {{ hypothesis }} {{ question }}"
        "{% else %}Ticket: {{ input }}\n{{ question }} Reply {{ labels | join('/') }}."
        "{% endif %}\n"
    )
    summary, backend = _audit(
        dataset, tmp_path, "run", task_template=str(template), perturbations="instruction:1"
    )
    prompts = {_user(r) for r in backend.history}
    assert "Customer question: What is the capital of France?" in prompts
    assert (
        "Ticket: A warm, funny film.\nWhich label fits this text best: negative or positive? "
        "Reply negative/positive."
    ) in prompts
    assert (
        "Claim: A man sleeps. / A man is awake. What is the relation of the hypothesis to the premise: entailment, neutral or contradiction?"
        in prompts
    )
    recorded = summary["prompts"]["task_template"]
    assert recorded["path"] == str(template)
    assert recorded["sha256"] == hashlib.sha256(template.read_bytes()).hexdigest()
    assert set(summary["prompts"]["task"].values()) == {recorded["ref"]}


def test_a_task_template_in_prompts_dir_overrides_the_shipped_one(
    dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "my-prompts"
    (folder / "task").mkdir(parents=True)
    (folder / "task" / "qa.j2").write_text("Q: {{ input }}\nA:")
    summary, backend = _audit(dataset, tmp_path, "run", prompts_dir=str(folder))
    prompts = {_user(r) for r in backend.history}
    assert "Q: What is the capital of France?\nA:" in prompts
    assert any(p.startswith("Text: A warm, funny film.") for p in prompts)  # others: shipped
    shipped = PromptLibrary().get("task", "classification").ref
    assert summary["prompts"]["task"]["classification"] == shipped
    assert summary["prompts"]["task"]["qa"] != PromptLibrary().get("task", "qa").ref


@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        ("system_prompt", None, r"--system-prompt .*missing\.txt: no such file"),
        ("system_prompt", "  \n", r"--system-prompt .*missing\.txt: the file is empty"),
        ("task_template", None, r"--task-template .*missing\.txt: no such file"),
        ("task_template", "Text: {{ input }\n", r"missing\.txt:1: template syntax error"),
        ("task_template", "ok\n{% if input %}\n", r"missing\.txt:\d+: template syntax error"),
        ("task_template", "Text: {{ text }}", r"missing\.txt: 'text' is undefined — task templates are given input, question"),
    ],
)  # fmt: skip
def test_a_bad_prompt_file_is_a_config_error_before_any_call(
    dataset: Path, tmp_path: Path, option: str, content: str | None, message: str
) -> None:
    path = tmp_path / "missing.txt"
    if content is not None:
        path.write_text(content)
    from sua_audit.runner import audit, make_config

    backend = FakeBackend()
    config = make_config(dataset, model="fake/echo", **{option: str(path)})
    with pytest.raises(ConfigError, match=message):
        audit(config, cache_path=tmp_path / "c.db", out_dir=tmp_path / "out", backend=backend)
    assert not backend.history and not (tmp_path / "out").exists()


def test_a_template_without_the_question_cannot_be_instruction_attacked(
    dataset: Path, tmp_path: Path
) -> None:
    template = tmp_path / "fixed.j2"
    template.write_text("Review: {{ input }}\nSentiment ({{ label_text }}):")
    with pytest.raises(ConfigError, match=r"fixed\.j2: the template never uses \{\{ question \}\}"):
        _audit(dataset, tmp_path, "run", task_template=str(template), perturbations="instruction:1")
    summary, _ = _audit(dataset, tmp_path, "ok", task_template=str(template))  # no attacks: fine
    assert summary["results"]["items"] == 3


def test_a_system_message_from_both_the_flag_and_the_template_is_refused(
    dataset: Path, tmp_path: Path
) -> None:
    (tmp_path / "t.j2").write_text("{{ question }}")
    (tmp_path / "t.system.j2").write_text("You classify.")
    (tmp_path / "s.txt").write_text("You are deployed.")
    with pytest.raises(ConfigError, match="already renders a system message"):
        _audit(
            dataset,
            tmp_path,
            "run",
            task_template=str(tmp_path / "t.j2"),
            system_prompt=str(tmp_path / "s.txt"),
        )


def test_rescore_replays_the_system_prompt_and_refuses_an_edited_one(
    dataset: Path, tmp_path: Path
) -> None:
    from sua_audit.rescoring import CacheMissError, rescore_run

    system = tmp_path / "system.txt"
    system.write_text("Be careful.")
    template = tmp_path / "task.j2"
    template.write_text("{{ question }}\n{{ input }}")
    first, _ = _audit(
        dataset, tmp_path, "run", system_prompt=str(system), task_template=str(template)
    )
    again = rescore_run(tmp_path / "run", lam=0.5, out=tmp_path / "rescored")
    assert again["model_calls"] == 0
    assert again["prompts"] == first["prompts"]
    system.write_text("Be bold.")
    with pytest.raises(CacheMissError, match=r"--system-prompt file .*system\.txt changed"):
        rescore_run(tmp_path / "run", lam=0.5, out=tmp_path / "rescored2")


def test_training_reads_the_same_prompts_as_the_audit(dataset: Path, tmp_path: Path) -> None:
    from sua_audit.tasks import TaskPrompts
    from sua_audit.train.data import load_examples, training_plan, variant_messages

    system = tmp_path / "system.txt"
    system.write_text("You are deployed.\n")
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(i) + "\n" for i in ITEMS if i["task"] != "qa"))
    examples, _ = load_examples(labelled)
    plain = variant_messages(examples, training_plan("typo:1"), 0)
    prompts = TaskPrompts.from_paths(system_prompt=system)
    deployed = variant_messages(examples, training_plan("typo:1"), 0, prompts)
    for plain_variants, deployed_variants in zip(plain, deployed, strict=True):
        for (user,), (first, same) in zip(plain_variants, deployed_variants, strict=True):
            assert (first.role, first.content) == ("system", "You are deployed.")
            assert same == user


def test_the_cost_estimate_counts_the_system_prompt(dataset: Path, tmp_path: Path) -> None:
    from sua_audit.dataset import validate_dataset
    from sua_audit.pricing import estimate
    from sua_audit.runner import make_config

    info = validate_dataset(dataset)
    system = tmp_path / "long.txt"
    system.write_text("Follow the policy. " * 200)  # ~950 tokens, with every request
    plain = estimate(info, make_config(dataset), None)["prompt_tokens"]
    deployed = estimate(info, make_config(dataset, system_prompt=str(system)), None)
    assert deployed["prompt_tokens"] > plain + 900 * deployed["requests"] // 2
