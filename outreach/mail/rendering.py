"""Marketer-authored Jinja2 templates, compiled and rendered in a sandbox.

``SandboxedEnvironment`` blocks attribute tricks such as
``{{ ''.__class__.__mro__ }}``; HTML autoescapes; source and output are size-limited.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_format, do_indent, do_replace
from jinja2.sandbox import SandboxedEnvironment

from outreach.errors import Invalid
from outreach.mail.html_text import html_to_text

# The largest string or sequence one expression may build. The output limit is checked
# while rendering, but ``'x' * 10**10`` or ``'x'.rjust(10**10)`` would exhaust memory
# before any output exists (and Jinja folds constant expressions at compile time, so
# ``{{ 'x' * 10**10 }}`` would do it while a template is merely being validated).
MAX_VALUE = 1_000_000
# a width or precision of a million or more: '%0999999999d', '%.9999999f', '{:>9999999}'
_BIG_LITERAL = re.compile(r"%(\([^)]*\))?[^a-zA-Z%]*\d{7}|\{[^{}]*:[^{}]*\d{7}")
_WIDTH_FROM_ARG = re.compile(r"\*|\{[^{}]*:[^{}]*\{")  # '%*d', '{:{w}}'


def _limit(size: int) -> None:
    if size > MAX_VALUE:
        raise SecurityError("the template builds a value larger than the output limit")


def _check_format(fmt: str, args: tuple[Any, ...]) -> None:
    if _BIG_LITERAL.search(fmt):
        raise SecurityError("format width or precision too large")
    if _WIDTH_FROM_ARG.search(fmt):
        for arg in args:
            if isinstance(arg, int) and abs(arg) > MAX_VALUE:
                raise SecurityError("format width or precision too large")


def _center(value: str, width: int = 80) -> str:
    _limit(width if isinstance(width, int) else 0)
    return do_center(value, width)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_format(str(value), (*args, *kwargs.values()))
    return do_format(value, *args, **kwargs)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    pad = width if isinstance(width, int) else len(str(width))
    _limit(pad * (str(s).count("\n") + 1))
    return do_indent(s, width, first, blank)


@pass_eval_context
def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
    _check_replace(str(s), str(old), str(new))
    return do_replace(eval_ctx, s, old, new, count)


def _check_replace(s: str, old: str, new: str) -> None:
    if len(new) > len(old):
        _limit(len(s) + (s.count(old) if old else len(s) + 1) * (len(new) - len(old)))


_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class _Sandbox(SandboxedEnvironment):
    """The sandbox, plus limits on what one expression may allocate."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters.update(center=_center, format=_format, indent=_indent, replace=_replace)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    _limit(len(seq) * n)
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and right * abs(left).bit_length() > 64 * 1024):
                raise SecurityError("number too large")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, right if isinstance(right, tuple) else (right,))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(__obj.__self__, str):
            name = __obj.__name__
            if name in _PADDING and args and isinstance(args[0], int):
                _limit(args[0] * (len(__obj.__self__) if name == "expandtabs" else 1))
            elif name == "replace" and len(args) >= 2:
                _check_replace(__obj.__self__, str(args[0]), str(args[1]))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(fmt, (*args, *kwargs.values()))
            return wrapped(*args, **kwargs)

        return checked


class _SandboxUndefined(Undefined):
    """An undefined value, except that using one the sandbox refused (``''.__class__``,
    ``self._TemplateReference__context``) fails the render instead of printing nothing."""

    __slots__ = ()

    def _refused(self) -> bool:
        return self._undefined_exception is SecurityError

    def __str__(self) -> str:
        if self._refused():
            self._fail_with_undefined_error()
        return super().__str__()

    def __iter__(self) -> Any:
        if self._refused():
            self._fail_with_undefined_error()
        return super().__iter__()

    def __bool__(self) -> bool:
        if self._refused():
            self._fail_with_undefined_error()
        return super().__bool__()


_html_env = _Sandbox(autoescape=True, undefined=_SandboxUndefined)
_text_env = _Sandbox(autoescape=False, undefined=_SandboxUndefined)
_strict_env = _Sandbox(autoescape=False, undefined=StrictUndefined)


class RenderError(Exception):
    """A template failed at render time (sandbox violation, error, output too large)."""


@dataclass(frozen=True)
class CompiledTemplate:
    subject: Any
    html: Any
    text: Any
    max_output: int

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        budget = [self.max_output]

        def render(template: Any) -> str:
            # streamed, so a loop that prints too much stops at the limit, not at MemoryError
            parts = []
            for chunk in template.generate(context):
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise RenderError("rendered message is larger than the output limit")
                parts.append(chunk)
            return "".join(parts)

        try:
            subject = " ".join(render(self.subject).split())
            html = render(self.html)
            text = render(self.text)
            if not text.strip():  # no text part written: the HTML's, as text
                text = html_to_text(html)
        except RenderError:
            raise
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - anything a template does wrong is its error
            raise RenderError(f"template error: {exc.__class__.__name__}: {exc}") from exc
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
    for name, source, env in (("subject", subject, _text_env), ("html", html, _html_env),
                              ("text", text, _text_env)):
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
    subject: str, html: str, text: str, *, max_source: int, max_output: int
) -> tuple[CompiledTemplate | None, dict[str, SourceError]]:
    """The compiled template, or None and why each source does not compile, with the line
    (the console's editor marks it)."""
    compiled, errors = _compile_each(subject, html, text, max_source)
    if errors:
        return None, errors
    return CompiledTemplate(compiled["subject"], compiled["html"], compiled["text"], max_output), {}


def compile_template(
    subject: str, html: str, text: str, *, max_source: int, max_output: int
) -> CompiledTemplate:
    """Compile the three sources or raise ``Invalid`` (422) saying which and why."""
    template, errors = try_compile(subject, html, text, max_source=max_source,
                                   max_output=max_output)
    if template is None:
        raise Invalid("Validation failed.", {name: [e.message] for name, e in errors.items()})
    return template
