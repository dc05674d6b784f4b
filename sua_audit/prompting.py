"""Prompt templates as files: ``prompts/<kind>/<name>.j2``, rendered with Jinja2.

A template renders to the user message; an optional ``<name>.system.j2`` beside it renders to
a system message. Rendering is strict (an undefined variable is an error, not an empty string).

Each template is versioned by the SHA-256 of its file contents (and its system file's), so a
run records exactly which wording produced its rewrites. The cache needs no extra help: an
edited template renders different messages, so only its own requests change keys.

``--prompts-dir DIR`` (or ``SUA_AUDIT_PROMPTS_DIR``) overrides templates file by file:
``DIR/paraphrase/default.j2`` replaces the shipped one; kinds or names not in ``DIR`` fall back
to the shipped files.

The shipped templates live in the repository's top-level ``prompts/``; the wheel build maps
that folder into the package as ``sua_audit/prompts`` (pyproject.toml), so an installed copy
reads them from the package and a source checkout from ``prompts/`` (see :func:`builtin_dir`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sua_audit.errors import ConfigError

if TYPE_CHECKING:
    import jinja2

    from sua_audit.backends.base import Message

SUFFIX = ".j2"
#: Where the shipped templates are in an installed wheel (inside the package).
PACKAGED_DIR = Path(str(resources.files("sua_audit") / "prompts"))
#: Where they are in a source checkout (an editable install, or tests run from the repository).
SOURCE_DIR = Path(__file__).resolve().parent.parent / "prompts"


def builtin_dir() -> Path:
    """The shipped templates: the package's copy when installed, else the checkout's
    ``prompts/``; :class:`ConfigError` when neither exists (a broken install)."""
    for folder in (PACKAGED_DIR, SOURCE_DIR):
        if (folder / "paraphrase").is_dir():
            return folder
    raise ConfigError(
        f"the shipped prompt templates are missing (looked in {PACKAGED_DIR} and "
        f"{SOURCE_DIR}); reinstall sua-audit."
    )


@dataclass(frozen=True)
class PromptTemplate:
    """One template (and its optional system template), ready to render."""

    kind: str
    name: str
    path: Path
    source: str
    system_source: str | None

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the template's text (and its system part's), in hex."""
        digest = hashlib.sha256(self.source.encode())
        if self.system_source is not None:
            digest.update(b"\0system\0" + self.system_source.encode())
        return digest.hexdigest()

    @property
    def version(self) -> str:
        """First 12 hex digits of :attr:`sha256`."""
        return self.sha256[:12]

    @property
    def ref(self) -> str:
        """``kind/name@version``: how runs and variants name the template."""
        return f"{self.kind}/{self.name}@{self.version}"

    def render(self, **variables: Any) -> tuple[Message, ...]:
        """The chat messages; an undefined variable raises :class:`ConfigError`."""
        return self.render_with(variables)

    def render_with(
        self,
        variables: Mapping[str, Any],
        *,
        strip: bool = True,
        hint: str = "fix the template or pass the variable",
    ) -> tuple[Message, ...]:
        """The chat messages for ``variables``.

        ``strip=False`` sends the user message exactly as rendered (the file's last newline
        is dropped, nothing else): the audited model's prompts, whose text ends with the
        item's own, stay byte for byte what the data says. ``hint`` ends the error message.
        """
        from sua_audit.backends.base import Message

        user, system = self._compiled
        messages = []
        if system is not None:
            messages.append(Message("system", self._render(system, variables, hint).strip()))
        text = self._render(user, variables, hint)
        messages.append(Message("user", text.strip() if strip else text))
        return tuple(messages)

    @cached_property
    def _compiled(self) -> tuple[jinja2.Template, jinja2.Template | None]:
        # Compiled once: the audited model's template renders for every variant of every item.
        env = _environment()
        system = None if self.system_source is None else env.from_string(self.system_source)
        return env.from_string(self.source), system

    def _render(self, template: jinja2.Template, variables: Mapping[str, Any], hint: str) -> str:
        import jinja2

        try:
            return template.render(variables)
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{self.path}: {exc} — {hint}.") from exc


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    # Plain text, not HTML: no autoescape. StrictUndefined: a typo in a variable name fails.
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


class PromptLibrary:
    """Finds templates in an override folder first, then among the shipped ones."""

    def __init__(self, override_dir: Path | None = None) -> None:
        if override_dir is not None and not override_dir.is_dir():
            raise ConfigError(f"--prompts-dir {override_dir}: not a folder.")
        self.override_dir = override_dir
        self._loaded: dict[tuple[str, str], PromptTemplate] = {}

    def _dirs(self) -> list[Path]:
        return [d for d in (self.override_dir, builtin_dir()) if d is not None]

    def get(self, kind: str, name: str = "default") -> PromptTemplate:
        """The template ``kind/name`` (override first); :class:`ConfigError` if none exists."""
        key = (kind, name)
        if key not in self._loaded:
            for folder in self._dirs():
                path = folder / kind / f"{name}{SUFFIX}"
                if path.is_file():
                    self._loaded[key] = load_template(path, kind, name)
                    break
            else:
                where = " or ".join(str(d / kind) for d in self._dirs())
                raise ConfigError(f"no prompt template {kind}/{name}{SUFFIX} in {where}.")
        return self._loaded[key]

    def available(self) -> list[tuple[str, str]]:
        """Every ``(kind, name)`` that :meth:`get` can load."""
        found: set[tuple[str, str]] = set()
        for folder in self._dirs():
            for path in folder.glob(f"*/*{SUFFIX}"):
                stem = path.name[: -len(SUFFIX)]
                if not stem.endswith(".system"):
                    found.add((path.parent.name, stem))
        return sorted(found)


def load_template(path: Path, kind: str, name: str) -> PromptTemplate:
    """The template in ``path`` (with ``<name>.system.j2`` beside it, if there), its syntax
    checked: :class:`ConfigError` with ``file:line`` when it does not parse."""
    system = path.with_name(f"{name}.system{SUFFIX}") if path.name.endswith(SUFFIX) else None
    try:
        template = PromptTemplate(
            kind=kind,
            name=name,
            path=path,
            source=path.read_text(encoding="utf-8"),
            system_source=system.read_text(encoding="utf-8")
            if system is not None and system.is_file()
            else None,
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the template ({exc}).") from exc
    _check_syntax(template)
    return template


def _check_syntax(template: PromptTemplate) -> None:
    import jinja2

    env = _environment()
    for source in (template.source, template.system_source):
        if source is None:
            continue
        try:
            env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{template.path}:{exc.lineno}: template syntax error: {exc.message} — fix it."
            ) from exc
