"""How an item (or one of its variants) becomes chat messages, and how answers map to labels.

The audited model's prompts are templates like every other prompt: ``prompts/task/qa.j2``,
``classification.j2`` and ``nli.j2`` (see prompts/README.md for their variables). A run may
replace the template of its dataset (``--task-template FILE``) and put a system message before
every request to the audited model (``--system-prompt FILE``), to audit the model as it is
deployed; both are recorded in the summary, and both change the messages and so the cache keys.

The shipped prompts are deliberately plain so that the audit measures the model, not prompt
tricks. For classification and NLI, each label is scored in its common surface forms
(``positive`` and ``Positive``) and their probabilities are added: a chat model that would
answer "Positive" is still choosing that label. The instructions name the item's labels and
nothing task-specific, so one wording serves every dataset; on weak models that costs accuracy
(the embedded model scores 0.56 on the first 96 SST-2 dev items with it, 0.75 with a
sentiment-specific question), which is fine for an audit: it needs failures to find. See
docs/method.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sua_audit.backends.base import Message
from sua_audit.errors import ConfigError

if TYPE_CHECKING:
    from sua_audit.prompting import PromptLibrary, PromptTemplate


class PromptSettings(Protocol):
    """The prompt settings of a run (an :class:`~sua_audit.config.AuditConfig` has them)."""

    @property
    def prompts_dir(self) -> str | None: ...
    @property
    def task_template(self) -> str | None: ...
    @property
    def system_prompt(self) -> str | None: ...


#: The question sentence of a classification / NLI prompt (``{labels}``: :func:`label_text`).
#: Instruction attacks (:mod:`sua_audit.perturbation.adversarial`) rewrite these very sentences.
CLASSIFY_QUESTION = "Which label fits this text best: {labels}?"
NLI_QUESTION = "What is the relation of the hypothesis to the premise: {labels}?"

#: The template kind of the audited model's prompts: ``prompts/task/<form>.j2``.
TASK_KIND = "task"
#: The variables every task template is given (absent ones are ``None`` or empty).
TASK_VARIABLES = (
    "input",
    "question",
    "labels",
    "label_text",
    "premise",
    "hypothesis",
    "instruction",
    "task",
    "form",
)


def label_text(labels: Sequence[str]) -> str:
    """The labels as the clean prompt names them: ``"a, b or c"``."""
    return " or ".join(", ".join(labels).rsplit(", ", 1))


def prompt_form(task: str, fields: Mapping[str, str]) -> str:
    """Which prompt an item gets: ``qa``, ``nli`` (a separate premise and hypothesis) or
    ``classification`` (every other label task, NLI given as one text included)."""
    if task == "qa":
        return "qa"
    if task == "nli" and "premise" in fields and "hypothesis" in fields:
        return "nli"
    return "classification"


def prompt_variables(
    task: str, fields: Mapping[str, str], labels: Sequence[str] | None
) -> dict[str, Any]:
    """What a task template is rendered with, for one variant's text fields.

    ``question`` is the QA item's question, or the sentence of a classification / NLI prompt
    that asks for a label. A variant's ``fields["instruction"]`` (instruction-level attacks)
    replaces that sentence; everything else stays as in the clean prompt, so the instruction
    is the only difference the model sees.
    """
    form = prompt_form(task, fields)
    names = label_text(labels or ())
    instruction = fields.get("instruction") or None
    if form == "qa":
        question = fields["input"]
    else:
        question = instruction or (NLI_QUESTION if form == "nli" else CLASSIFY_QUESTION).format(
            labels=names
        )
    return {
        "input": fields["input"],
        "question": question,
        "labels": list(labels or ()),
        "label_text": names,
        "premise": fields.get("premise"),
        "hypothesis": fields.get("hypothesis"),
        "instruction": instruction,
        "task": task,
        "form": form,
    }


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class TaskPrompts:
    """How this run's items become the audited model's messages (never the rewriter's or the
    judge's): the task templates, and an optional system message before each request.

    Attributes:
        library: Where ``task/<form>.j2`` is found (``--prompts-dir`` first, then the shipped
            templates).
        template: ``--task-template``: one template for every item of the dataset instead.
        template_arg: The template's path as given.
        system: ``--system-prompt``: the system message's text (the file, stripped).
        system_arg: The system prompt's path as given.
        system_sha256: SHA-256 of the system prompt file's bytes.
        used: The prompt forms rendered so far (what :meth:`record` lists).
    """

    library: PromptLibrary | None = None
    template: PromptTemplate | None = None
    template_arg: str | None = None
    system: str | None = None
    system_arg: str | None = None
    system_sha256: str | None = None
    used: set[str] = field(default_factory=set)
    _forms: dict[str, PromptTemplate] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: PromptSettings) -> TaskPrompts:
        """This run's prompts (see :meth:`from_paths`)."""
        return cls.from_paths(config.prompts_dir, config.task_template, config.system_prompt)

    @classmethod
    def from_paths(
        cls,
        prompts_dir: str | Path | None = None,
        task_template: str | Path | None = None,
        system_prompt: str | Path | None = None,
    ) -> TaskPrompts:
        """The prompts of ``--prompts-dir``, ``--task-template`` and ``--system-prompt``; a
        missing, unreadable or malformed file is a ConfigError naming it (and the line, for
        a template syntax error)."""
        from sua_audit.prompting import PromptLibrary, load_template

        library = PromptLibrary(Path(prompts_dir) if prompts_dir else None)
        template = None
        if task_template is not None:
            path = Path(task_template)
            if not path.is_file():
                raise ConfigError(f"--task-template {path}: no such file.")
            template = load_template(path, TASK_KIND, path.name.removesuffix(".j2"))
        system = system_sha = None
        if system_prompt is not None:
            path = Path(system_prompt)
            if not path.is_file():
                raise ConfigError(f"--system-prompt {path}: no such file.")
            try:
                system = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--system-prompt {path}: cannot read it ({exc}).") from exc
            if not system:
                raise ConfigError(f"--system-prompt {path}: the file is empty.")
            system_sha = _file_sha256(path)
        return cls(
            library=library,
            template=template,
            template_arg=None if task_template is None else str(task_template),
            system=system,
            system_arg=None if system_prompt is None else str(system_prompt),
            system_sha256=system_sha,
        )

    def template_for(self, form: str) -> PromptTemplate:
        """The template of one prompt form (``--task-template`` serves them all)."""
        if self.template is not None:
            return self.template
        if form not in self._forms:
            from sua_audit.prompting import PromptLibrary

            self._forms[form] = (self.library or PromptLibrary()).get(TASK_KIND, form)
        return self._forms[form]

    def messages(
        self, task: str, fields: Mapping[str, str], labels: Sequence[str] | None
    ) -> tuple[Message, ...]:
        """The chat messages for one variant's text fields."""
        variables = prompt_variables(task, fields, labels)
        template = self.template_for(variables["form"])
        self.used.add(variables["form"])
        messages = template.render_with(
            variables,
            strip=False,
            hint=f"task templates are given {', '.join(TASK_VARIABLES)}",
        )
        if self.system is None:
            return messages
        return (Message("system", self.system), *messages)

    def check(self, tasks: Sequence[str], instruction_attacks: bool = False) -> None:
        """Render each prompt form these tasks need once, on stand-in text, so that a bad
        template fails before any model call (:class:`ConfigError` naming the file).

        With ``instruction_attacks``, a label-task template must use ``question`` (or
        ``instruction``): otherwise attacked variants would be the clean prompt again.
        """
        fields = {"input": "<input>", "premise": "<premise>", "hypothesis": "<hypothesis>"}
        samples: list[tuple[str, dict[str, str]]] = []
        for task in dict.fromkeys(tasks):
            samples.append((task, fields))
            if task == "nli":
                samples.append((task, {"input": "<input>"}))  # NLI as one text
        for task, item_fields in samples:
            labels: tuple[str, ...] | None = None if task == "qa" else ("<a>", "<b>", "<c>")
            clean = self.messages(task, item_fields, labels)
            if task != "qa" and instruction_attacks:
                attacked = self.messages(
                    task, {**item_fields, "instruction": "<instruction>"}, labels
                )
                if attacked == clean:
                    form = prompt_form(task, item_fields)
                    raise ConfigError(
                        f"{self.template_for(form).path}: the template never uses "
                        "{{ question }} (nor {{ instruction }}), so `instruction` variants "
                        "would send the clean prompt again. Put {{ question }} where the "
                        "question goes, or drop instruction from --perturbations."
                    )
        if self.system is not None:
            for task, item_fields in samples:
                labels = None if task == "qa" else ("<a>",)
                if sum(m.role == "system" for m in self.messages(task, item_fields, labels)) > 1:
                    form = prompt_form(task, item_fields)
                    raise ConfigError(
                        f"--system-prompt {self.system_arg}: {self.template_for(form).path} "
                        "already renders a system message; keep one of the two."
                    )

    def record(self) -> dict[str, Any]:
        """What the summary records: the template of each prompt form rendered so far
        (``task/<form>@version``), and the task template and system prompt as given, with
        their content hashes."""
        out: dict[str, Any] = {
            "task": {form: self.template_for(form).ref for form in sorted(self.used)},
            "task_template": None,
            "system_prompt": None,
        }
        if self.template is not None:
            out["task_template"] = {
                "path": self.template_arg,
                "sha256": self.template.sha256,
                "ref": self.template.ref,
            }
        if self.system is not None:
            out["system_prompt"] = {"path": self.system_arg, "sha256": self.system_sha256}
        return out


@cache
def default_prompts() -> TaskPrompts:
    """The shipped task templates, no system message."""
    return TaskPrompts()


def build_messages(
    task: str,
    fields: Mapping[str, str],
    labels: Sequence[str] | None,
    prompts: TaskPrompts | None = None,
) -> tuple[Message, ...]:
    """The chat messages for one variant's text fields (see :func:`prompt_variables`), with
    ``prompts`` (default: the shipped templates, no system message)."""
    return (prompts or default_prompts()).messages(task, fields, labels)


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
