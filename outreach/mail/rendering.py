"""Marketer-authored Jinja2 templates, compiled and rendered in a sandbox.

Templates are untrusted programs: they compile in ``sandbox``'s environments (attribute
tricks and mutation blocked, HTML autoescaped) and render with a budget of work, memory and
time (``WORK_BUDGET`` steps, ``MAX_VALUE`` per built value, the wall-clock limit
``OUTREACH_RENDER_TIMEOUT_SECONDS``); source and output are size-limited here. A template
over budget raises ``BudgetExceeded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from outreach.errors import Invalid
from outreach.mail.html_text import html_to_text
from outreach.mail.sandbox import (
    BUDGET,
    DEFAULT_TIMEOUT,
    WORK_BUDGET,
    Budget,
    BudgetExceeded,
    RenderError,
    TooBig,
    html_env,
    text_env,
)

__all__ = ["DEFAULT_TIMEOUT", "WORK_BUDGET", "BudgetExceeded", "CompiledTemplate", "RenderError",
           "SourceError", "compile_template", "try_compile"]


@dataclass(frozen=True)
class CompiledTemplate:
    subject: Any
    html: Any
    text: Any
    max_output: int
    timeout: float = DEFAULT_TIMEOUT

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        """Subject, HTML and text for ``context``; ``RenderError`` when the template fails,
        ``BudgetExceeded`` (a ``RenderError``) when it takes too much work, memory or time."""
        output = [self.max_output]
        budget = Budget(WORK_BUDGET, self.timeout)
        part = ["subject"]

        def render(name: str, template: Any) -> str:
            # streamed, so a loop that prints too much stops at the limit, not at MemoryError
            part[0] = name
            parts = []
            for chunk in template.generate(context):
                output[0] -= len(chunk)
                if output[0] < 0:
                    raise BudgetExceeded("rendered message is larger than the output limit")
                budget.check_time()
                parts.append(chunk)
            return "".join(parts)

        token = BUDGET.set(budget)
        try:
            subject = " ".join(render("subject", self.subject).split())
            html = render("html", self.html)
            text = render("text", self.text)
            if not text.strip():  # no text part written: the HTML's, as text
                text = html_to_text(html)
        except BudgetExceeded as exc:
            exc.part = exc.part or part[0]
            raise
        except RenderError:
            raise
        except (TooBig, MemoryError, RecursionError) as exc:
            over = BudgetExceeded(f"template error: {exc.__class__.__name__}: {exc}", part[0])
            raise over from exc
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - anything a template does wrong is its error
            raise RenderError(f"template error: {exc.__class__.__name__}: {exc}") from exc
        finally:
            BUDGET.reset(token)
        return subject, html, text


@dataclass(frozen=True)
class SourceError:
    """Why one source does not compile: the message the API shows, and the line (1-based)
    when the compiler named one."""

    message: str
    line: int | None


def _compile_each(subject: str, html: str, text: str, max_source: int
                  ) -> tuple[dict[str, Any], dict[str, SourceError]]:
    errors: dict[str, SourceError] = {}
    compiled: dict[str, Any] = {}
    for name, source, env in (("subject", subject, text_env), ("html", html, html_env),
                              ("text", text, text_env)):
        if len(source.encode()) > max_source:
            errors[name] = SourceError(f"Longer than {max_source} bytes.", None)
            continue
        try:
            compiled[name] = env.from_string(source)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            errors[name] = SourceError(f"Does not compile{f' (line {line})' if line else ''}: {exc}",
                                       line)
    return compiled, errors


def try_compile(
    subject: str, html: str, text: str, *, max_source: int, max_output: int,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[CompiledTemplate | None, dict[str, SourceError]]:
    """The compiled template, or None and why each source does not compile, with the line
    (the console's editor marks it)."""
    compiled, errors = _compile_each(subject, html, text, max_source)
    if errors:
        return None, errors
    return CompiledTemplate(compiled["subject"], compiled["html"], compiled["text"], max_output,
                            timeout), {}


def compile_template(
    subject: str, html: str, text: str, *, max_source: int, max_output: int,
    timeout: float = DEFAULT_TIMEOUT,
) -> CompiledTemplate:
    """Compile the three sources or raise ``Invalid`` (422) saying which and why."""
    template, errors = try_compile(subject, html, text, max_source=max_source,
                                   max_output=max_output, timeout=timeout)
    if template is None:
        raise Invalid("Validation failed.", {name: [e.message] for name, e in errors.items()})
    return template
