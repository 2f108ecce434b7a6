"""Marketer-authored Jinja2 templates, compiled and rendered in a sandbox.

``SandboxedEnvironment`` blocks attribute tricks such as
``{{ ''.__class__.__mro__ }}``; HTML autoescapes; source and output are size-limited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from outreach.errors import Invalid

_html_env = SandboxedEnvironment(autoescape=True, undefined=Undefined)
_text_env = SandboxedEnvironment(autoescape=False, undefined=Undefined)
_strict_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


class RenderError(Exception):
    """A template failed at render time (sandbox violation, error, output too large)."""


@dataclass(frozen=True)
class CompiledTemplate:
    subject: Any
    html: Any
    text: Any
    max_output: int

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        try:
            subject = " ".join(self.subject.render(context).split())
            html = self.html.render(context)
            text = self.text.render(context)
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - anything a template does wrong is its error
            raise RenderError(f"template error: {exc.__class__.__name__}: {exc}") from exc
        if len(html) + len(text) + len(subject) > self.max_output:
            raise RenderError("rendered message is larger than the output limit")
        return subject, html, text


def compile_template(
    subject: str, html: str, text: str, *, max_source: int, max_output: int
) -> CompiledTemplate:
    """Compile the three sources or raise ``Invalid`` (422) saying which and why."""
    errors: dict[str, list[str]] = {}
    compiled: dict[str, Any] = {}
    for name, source, env in (("subject", subject, _text_env), ("html", html, _html_env),
                              ("text", text, _text_env)):
        if len(source.encode()) > max_source:
            errors[name] = [f"Longer than {max_source} bytes."]
            continue
        try:
            compiled[name] = env.from_string(source)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            errors[name] = [f"Does not compile{f' (line {line})' if line else ''}: {exc}"]
    if errors:
        raise Invalid("Validation failed.", errors)
    return CompiledTemplate(compiled["subject"], compiled["html"], compiled["text"], max_output)
