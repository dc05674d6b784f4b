"""Prompt templates: every shipped template renders, strictness, and --prompts-dir overrides."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2 import meta

from sua_audit.errors import ConfigError
from sua_audit.prompting import PromptLibrary, builtin_dir

#: The rewrite kinds and the variables their templates are documented to use.
REWRITE_KINDS = ("paraphrase", "ambiguity", "adversarial")
REWRITE_VARIABLES = {"text", "kind_of_text"}


def _variables(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(jinja2.Environment().parse(source)))


def _all_templates() -> list[tuple[str, str]]:
    return PromptLibrary().available()


def test_the_rewrite_templates_are_shipped() -> None:
    available = _all_templates()
    for kind in REWRITE_KINDS:
        assert (kind, "default") in available


@pytest.mark.parametrize(("kind", "name"), _all_templates(), ids=lambda x: str(x))
def test_every_template_renders_with_its_variables(kind: str, name: str) -> None:
    template = PromptLibrary().get(kind, name)
    used = _variables(template.source) | _variables(template.system_source or "")
    values = {var: f"<{var}>" for var in used}
    messages = template.render(**values)
    assert messages[-1].role == "user"
    assert all(m.content.strip() for m in messages)
    assert template.ref == f"{kind}/{name}@{template.version}"
    # Strict: leaving out any variable the template uses is an error naming the file.
    for missing in used:
        partial = {k: v for k, v in values.items() if k != missing}
        with pytest.raises(ConfigError, match=rf"{kind}/{name}"):
            template.render(**partial)


@pytest.mark.parametrize("kind", REWRITE_KINDS)
@pytest.mark.parametrize("kind_of_text", ["question", "sentence", "text"])
def test_rewrite_templates_use_and_document_their_variables(kind: str, kind_of_text: str) -> None:
    template = PromptLibrary().get(kind)
    assert _variables(template.source) == REWRITE_VARIABLES
    header = template.source.split("-#}", 1)[0]
    assert all(var in header for var in REWRITE_VARIABLES | {"task", "field"})
    text = "Who wrote the novel Moby-Dick in 1851?"
    (user,) = template.render(text=text, kind_of_text=kind_of_text, task="qa", field="input")
    assert user.content.endswith(text)  # the text comes last, after the instructions
    assert f"the new {kind_of_text}" in user.content
    assert "{" not in user.content and "#}" not in user.content
    assert ("Do not answer it" in user.content) == (kind_of_text == "question")


def test_prompts_dir_overrides_one_template_and_keeps_the_others(tmp_path: Path) -> None:
    shipped = PromptLibrary()
    (tmp_path / "paraphrase").mkdir()
    (tmp_path / "paraphrase" / "default.j2").write_text("Say it otherwise: {{ text }}\n")
    (tmp_path / "paraphrase" / "default.system.j2").write_text("You rewrite {{ kind_of_text }}s.")
    override = PromptLibrary(tmp_path)

    mine = override.get("paraphrase")
    assert mine.path == tmp_path / "paraphrase" / "default.j2"
    assert mine.version != shipped.get("paraphrase").version
    system, user = mine.render(text="Is it raining?", kind_of_text="question")
    assert (system.role, system.content) == ("system", "You rewrite questions.")
    assert user.content == "Say it otherwise: Is it raining?"
    for kind in ("ambiguity", "adversarial"):
        assert override.get(kind).version == shipped.get(kind).version
        assert override.get(kind).path.is_relative_to(builtin_dir())
    assert set(override.available()) == set(shipped.available())


def test_editing_the_system_part_alone_changes_the_version(tmp_path: Path) -> None:
    (tmp_path / "ambiguity").mkdir()
    body = (builtin_dir() / "ambiguity" / "default.j2").read_text()
    (tmp_path / "ambiguity" / "default.j2").write_text(body)
    same = PromptLibrary(tmp_path).get("ambiguity")
    assert same.version == PromptLibrary().get("ambiguity").version
    (tmp_path / "ambiguity" / "default.system.j2").write_text("Be brief.")
    assert PromptLibrary(tmp_path).get("ambiguity").version != same.version


def test_a_broken_override_fails_with_its_path_and_line(tmp_path: Path) -> None:
    (tmp_path / "adversarial").mkdir()
    (tmp_path / "adversarial" / "default.j2").write_text("ok\n{% if text %}\nno endif\n")
    with pytest.raises(ConfigError, match=r"adversarial/default\.j2:\d+: template syntax error"):
        PromptLibrary(tmp_path).get("adversarial")


def test_the_shipped_templates_come_from_the_package_first_then_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sua_audit import prompting

    packaged, source = tmp_path / "pkg", tmp_path / "src"
    monkeypatch.setattr(prompting, "PACKAGED_DIR", packaged)
    monkeypatch.setattr(prompting, "SOURCE_DIR", source)
    with pytest.raises(ConfigError, match="shipped prompt templates are missing.*reinstall"):
        PromptLibrary().get("paraphrase")
    (source / "paraphrase").mkdir(parents=True)
    assert prompting.builtin_dir() == source  # a source checkout: the top-level prompts/
    (packaged / "paraphrase").mkdir(parents=True)
    assert prompting.builtin_dir() == packaged  # an installed wheel: inside the package
