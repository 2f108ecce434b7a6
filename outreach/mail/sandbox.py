"""The sandbox marketer-authored templates compile and render in, with its budget.

``ImmutableSandboxedEnvironment`` blocks attribute tricks such as
``{{ ''.__class__.__mro__ }}`` and mutation of lists and dicts. On top of it: every loop
iteration, call (macros included) and filter call costs one step (``WORK_BUDGET`` per
message, counted on the ``BUDGET`` a render sets), and every value an operation reads or
builds costs a step per ``STEP_SIZE`` items (characters, elements): the strings and
sequences a filter, test, call, operator, slice, comparison or ``~`` takes and returns,
and what each ``{{ }}`` writes (also inside a macro, ``{% set %}`` block or ``{% call %}``,
whose output is buffered rather than streamed through the output limit). So the work a
render does is bounded by its steps, whatever the machine's speed: a loop whose body builds
a megabyte each time is stopped after a few iterations, not by the clock. Every filter's
result and every built value is size-checked (``MAX_VALUE``), and the wall clock (a safety
net) is looked at while steps are spent. Over budget raises ``BudgetExceeded``. Compiling
and rendering the three parts of a message is ``rendering``'s job.
"""

from __future__ import annotations

import functools
import re
import time
import types
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import (
    Undefined,
    nodes,
    pass_context,
    pass_environment,
    pass_eval_context,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_format, do_indent, do_join, do_replace, do_wordwrap
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

# The largest string or sequence one expression may build. The output limit is checked
# while rendering, but ``'x' * 10**10`` or ``'x'.rjust(10**10)`` would exhaust memory
# before any output exists (and Jinja folds constant expressions at compile time, so
# ``{{ 'x' * 10**10 }}`` would do it while a template is merely being validated).
MAX_VALUE = 1_000_000
# a width or precision of a million or more: '%0999999999d', '%.9999999f', '{:>9999999}'
_BIG_LITERAL = re.compile(r"%(\([^)]*\))?[^a-zA-Z%]*\d{7}|\{[^{}]*:[^{}]*\d{7}")
_WIDTH_FROM_ARG = re.compile(r"\*|\{[^{}]*:[^{}]*\{")  # '%*d', '{:{w}}'


# steps (loop iterations, calls, filter calls) one message may take: real templates take
# a few hundred; a million-iteration loop is a program, not an email
WORK_BUDGET = 200_000
DEFAULT_TIMEOUT = 2.0
# the items (characters, elements) an operation may read or build per step: with the step
# budget this bounds a render's work to about WORK_BUDGET * STEP_SIZE items
STEP_SIZE = 32
# wordwrap's cost grows with its input much faster than other filters'
MAX_WRAP_INPUT = 100_000


class RenderError(Exception):
    """A template failed at render time (sandbox violation, error, output too large)."""


class BudgetExceeded(RenderError):
    """The template took more work, memory or time than one message may take. ``part`` is
    the source (subject, html, text) it happened in, when known."""

    def __init__(self, message: str, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part


class Budget:
    __slots__ = ("left", "deadline")

    def __init__(self, steps: int, seconds: float) -> None:
        self.left = steps
        self.deadline = time.monotonic() + seconds

    def spend(self, steps: int = 1) -> None:
        before = self.left
        self.left -= steps
        if self.left < 0:
            raise BudgetExceeded(f"the template takes more than {WORK_BUDGET} steps (loop "
                                 "iterations, calls and filters) for one message")
        # the clock every 256 steps (and on every bulk spend: join, wordwrap)
        if before >> 8 != self.left >> 8 and time.monotonic() > self.deadline:
            self.too_slow()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            self.too_slow()

    @staticmethod
    def too_slow() -> None:
        raise BudgetExceeded("the template takes longer to render than the time limit")


BUDGET: ContextVar[Budget | None] = ContextVar("outreach_render_budget", default=None)


def _spend(steps: int = 1) -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.spend(steps)


class TooBig(SecurityError):
    """A value or an operation larger than one message may build (over budget)."""


def _size(value: Any) -> int:
    """The items an operation on ``value`` reads: its length when it has one for free."""
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset, range)):
        return len(value)
    return 0


def _deep_size(value: Any, cap: int = MAX_VALUE) -> int:
    """How many items printing ``value`` writes, at least: a list of a thousand
    megabyte strings is a gigabyte as a string. Stops counting past ``cap``."""
    if isinstance(value, (list, tuple, set, frozenset)):
        total = len(value)
        for item in value:
            if total > cap:
                break
            total += _deep_size(item, cap - total)
        return total
    if isinstance(value, dict):
        total = len(value)
        for key, item in value.items():
            if total > cap:
                break
            total += _deep_size(key, cap - total) + _deep_size(item, cap - total)
        return total
    return _size(value)


def _charge(*values: Any) -> None:
    """A step per ``STEP_SIZE`` items of the values an operation reads or builds."""
    items = 0
    for value in values:
        items += _size(value)
    if items >= STEP_SIZE:
        _spend(items // STEP_SIZE)


def _built(value: Any) -> Any:
    """A value an expression built (``~``): size-checked and charged."""
    _charge(_sized(value))
    return value


def _charged(value: Any) -> Any:
    """A value an expression reads (a comparison's operands): charged, returned."""
    _charge(value)
    return value


def _emitted(value: Any) -> Any:
    """What ``{{ }}`` writes: charged by the size of its text (a container's by its items'),
    so buffered output (macros, ``{% set %}`` blocks) costs what streamed output does."""
    if isinstance(value, str):
        _charge(value)
    elif isinstance(value, (list, tuple, dict, set, frozenset)):
        size = _deep_size(value)
        _limit(size)
        _spend(size // STEP_SIZE)
    return value


def _limit(size: int) -> None:
    if size > MAX_VALUE:
        raise TooBig("the template builds a value larger than the output limit")


def _sized(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)):
        _limit(len(value))
    return value


def _check_format(fmt: str, args: tuple[Any, ...]) -> None:
    if _BIG_LITERAL.search(fmt):
        raise TooBig("format width or precision too large")
    if _WIDTH_FROM_ARG.search(fmt):
        for arg in args:
            if isinstance(arg, int) and abs(arg) > MAX_VALUE:
                raise TooBig("format width or precision too large")


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


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value) if not isinstance(value, (str, list, tuple)) else value
    _limit(len(items))
    _spend(len(items) // 100)
    total = len(str(d)) * max(0, len(items) - 1)
    for item in items:
        total += len(item) if isinstance(item, str) else len(str(item))
        _limit(total)
    return do_join(eval_ctx, items, d, attribute)


@pass_environment
def _wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True,
              wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
    s = str(s)
    if len(s) > MAX_WRAP_INPUT:
        raise TooBig(f"wordwrap takes at most {MAX_WRAP_INPUT} characters")
    if not isinstance(width, int) or width < 1:
        raise SecurityError("wordwrap needs a positive width")
    lines = len(s) // width + s.count("\n") + 1
    _limit(len(s) + lines * len(wrapstring if wrapstring is not None else "\n"))
    _spend(lines // 10)
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


# filters that turn a whole structure into text: its items are counted before it is built
_STRINGIFY = frozenset({"string", "pprint", "tojson", "urlencode", "escape", "e", "forceescape",
                        "xmlattr", "safe", "striptags", "sort", "unique", "dictsort"})


def _budgeted_filter(func: Any, deep: bool = False) -> Any:
    """Each call costs a step, plus a step per ``STEP_SIZE`` items of its arguments and its
    result, and its result is size-checked."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _spend()
        _charge(*args, *kwargs.values())
        if deep and args:
            value = args[1] if _takes_pass_arg(func) and len(args) > 1 else args[0]
            size = _deep_size(value)
            _limit(size)
            _spend(size // STEP_SIZE)
        result = _sized(func(*args, **kwargs))
        _charge(result)
        return result

    return wrapped


def _budgeted_test(func: Any) -> Any:
    """Each test costs a step, plus a step per ``STEP_SIZE`` items it reads (``is in``)."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _spend()
        _charge(*args, *kwargs.values())
        return func(*args, **kwargs)

    return wrapped


def _takes_pass_arg(func: Any) -> bool:
    return getattr(func, "jinja_pass_arg", None) is not None


@pass_context
def _each(_context: Any, value: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates (see ``_Budgeted``): one step per iteration."""
    for item in value:
        _spend()
        yield item


class _Namespace(Namespace):
    """``namespace()`` whose attributes are size-checked: ``{% set ns.s = ns.s ~ ns.s %}`` in
    a loop doubles a value each time."""

    def __setitem__(self, name: str, value: Any) -> None:
        _sized(value)
        super().__setitem__(name, value)


class _Budgeted(NodeTransformer):
    """Rewrites a parsed template so that every loop iterates through ``_each``, every
    ``~`` concatenation is size-checked and charged, and slices, comparisons and output
    are charged by their size."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_each", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, "_built", [], [], None, None, lineno=node.lineno)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        """A slice copies (and bypasses the environment's ``getitem``)."""
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):
            return nodes.Filter(node, "_charged", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        """``a == b`` and ``a in b`` read both sides."""
        self.generic_visit(node)
        node.expr = nodes.Filter(node.expr, "_charged", [], [], None, None, lineno=node.lineno)
        for operand in node.ops:
            operand.expr = nodes.Filter(operand.expr, "_charged", [], [], None, None,
                                        lineno=node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [child if isinstance(child, nodes.TemplateData)
                      else nodes.Filter(child, "_emitted", [], [], None, None, lineno=child.lineno)
                      for child in node.nodes]
        return node


_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on what one expression may allocate and a budget of work."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters.update(center=_center, format=_format, indent=_indent, replace=_replace,
                            join=_join, wordwrap=_wordwrap)
        self.filters = {name: _budgeted_filter(f, name in _STRINGIFY)
                         for name, f in self.filters.items()}
        self.tests = {name: _budgeted_test(f) for name, f in self.tests.items()}
        self.filters["_each"] = _each
        self.filters["_built"] = _built
        self.filters["_charged"] = _charged
        self.filters["_emitted"] = _emitted
        self.globals.pop("lipsum", None)
        self.globals["namespace"] = _Namespace

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _Budgeted().visit(super()._parse(source, name, filename))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    _limit(len(seq) * n)
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and right * abs(left).bit_length() > 64 * 1024):
                raise TooBig("number too large")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, right if isinstance(right, tuple) else (right,))
        elif (operator == "+" and isinstance(left, (str, list, tuple))
                and isinstance(right, (str, list, tuple))):
            _limit(len(left) + len(right))
        _charge(left, right)
        result = super().call_binop(context, operator, left, right)
        _charge(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(__obj.__self__, str):
            name = __obj.__name__
            if name in _PADDING and args and isinstance(args[0], int):
                _limit(args[0] * (len(__obj.__self__) if name == "expandtabs" else 1))
            elif name == "replace" and len(args) >= 2:
                _check_replace(__obj.__self__, str(args[0]), str(args[1]))
        # what a method reads (its object and arguments) and what a call (a macro's output
        # too) returns
        if isinstance(__obj, types.BuiltinMethodType):
            _charge(__obj.__self__)
        _charge(*args, *kwargs.values())
        result = super().call(__context, __obj, *args, **kwargs)
        _charge(result)
        return result

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


html_env = _Sandbox(autoescape=True, undefined=_SandboxUndefined)
text_env = _Sandbox(autoescape=False, undefined=_SandboxUndefined)
