"""The Jinja2 environment of the reports: templates shipped in ``sua_audit/reports/templates``.

Imported only when a report is rendered (jinja2 is not loaded by ``sua-audit --help``).

* HTML templates (``*.html.j2``) are autoescaped: every value a template prints is escaped
  unless it is :class:`markupsafe.Markup`, and the only Markup the renderers hand over is the
  inline SVG that :mod:`sua_audit.reports.svg` built (and escaped) itself. Dataset and model
  text is therefore always escaped by the template.
* Markdown templates (``*.md.j2``) are not autoescaped; untrusted text goes through the
  ``cell`` filter (:func:`sua_audit.reports.markdown.cell`) instead.
* Numbers are written by :mod:`sua_audit.numbers`, registered as filters (``num``,
  ``estimate``, ``estimate_node``, ``percent``, ``usd``, ...).

HTML templates are written indented for reading, while the page stays one line per section as
the renderers always wrote it: a line break in an HTML template and the indentation after it
are dropped when the template is loaded, and a line break that belongs to the page (inside a
``white-space: pre-wrap`` block) is written ``{{ "\\n" }}``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from sua_audit import numbers

if TYPE_CHECKING:
    import jinja2

#: Where the templates live inside the package (shipped in the wheel with it).
PACKAGE, FOLDER = "sua_audit.reports", "templates"

_LINE_BREAK = re.compile(r"\n[ \t]*")


def _compact_extension() -> type[jinja2.ext.Extension]:
    from jinja2.ext import Extension

    class Compact(Extension):
        """Drops the layout line breaks of HTML templates (see the module's docstring)."""

        def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
            if name is not None and name.endswith(".html.j2"):
                return _LINE_BREAK.sub("", source)
            return source

    return Compact


@cache
def environment() -> jinja2.Environment:
    """The one environment of the report templates (built on first use)."""
    import jinja2

    from sua_audit.reports.markdown import cell

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, FOLDER),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"),
            disabled_extensions=("md", "md.j2", "css"),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=[_compact_extension()],
    )
    env.filters.update(
        num=numbers.fixed,
        signed=numbers.signed,
        estimate=numbers.estimate,
        estimate_node=numbers.estimate_node,
        percent=numbers.percent,
        usd=numbers.usd,
        sig=numbers.sig,
        short=numbers.short,
        cell=cell,
    )
    return env


def render(name: str, **context: Any) -> str:
    """Template ``name`` of the report templates, rendered with ``context``."""
    return environment().get_template(name).render(**context)
