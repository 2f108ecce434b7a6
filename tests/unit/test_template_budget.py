"""Templates are untrusted programs: rendering has a budget of work, memory and time.

Hypothesis builds hostile templates from the pieces that cost work (nested loops,
``range``, ``join``, ``wordwrap``, string multiplication, ``~`` concatenation, namespaces,
recursive macros and loops); each must be stopped by the budget of work and output, which
counts steps and bytes, not seconds: the tests give the wall-clock safety net a minute, so
a slow or busy machine cannot change their answer, and fail if the net is what stopped one.
Over budget is a 422 at save and at preview, and a ``failed`` recipient at send time
(``test_templates.py`` covers send time for the classic bombs).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.mail.rendering import WORK_BUDGET, BudgetExceeded, RenderError, compile_template

NET = 60.0  # the wall-clock limit in these tests: never the thing that stops a bomb

BOMBS = [
    "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% endfor %}{% for a in range(100000) %}{% endfor %}"
    "{% for a in range(100000) %}{% endfor %}",
    "{{ range(100000)|join(',' * 100000) }}",
    "{{ (['x' * 1000000] * 1000)|join }}",
    "{{ ('x ' * 400000)|wordwrap(1) }}",
    "{{ ('x' * 90000)|wordwrap(1, wrapstring='y' * 1000) }}",
    "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}"
    "{% endfor %}{{ ns.l|length }}",
    "{% for x in [1] recursive %}{{ loop(range(100000)) }}{% endfor %}",
    "{% for c in 'x' * 1000000 %}{% for d in 'y' * 1000000 %}{% endfor %}{% endfor %}",
    "{{ (range(100000)|list|string) * 100 }}",
    "{% for i in range(100000) %}{{ i|string|center(1000) }}{% endfor %}",
    "{{ lipsum(10**6, false, 10**6, 10**6) }}",
    # work per step that grows with a value's size (not one step each): charged by its size.
    # A macro's or set block's output is buffered, not streamed through the output limit.
    "{% macro m() %}{% for i in range(100000) %}{{ 'y' ~ ('x' * 999999) }}{% endfor %}"
    "{% endmacro %}{{ m() }}",
    "{% set big = 'x' * 1000000 %}{% for i in range(100000) %}{% set s %}{{ big }}{{ big }}"
    "{% endset %}{% endfor %}",
    "{% set big = 'x' * 1000000 %}{% for i in range(100000) %}{% if big[1:] %}{% endif %}"
    "{% endfor %}",
    "{% set big = [0] * 1000000 %}{% for i in range(100000) %}{% if big == big %}{% endif %}"
    "{% endfor %}",
    "{% set big = 'x' * 1000000 %}{% for i in range(100000) %}{% if 'y' is in big %}{% endif %}"
    "{% endfor %}",
    "{% set big = 'x' * 1000000 %}{% for i in range(100000) %}{{ big.count('y') }}{% endfor %}",
    "{% set big = range(100000)|list %}{% for i in range(100000) %}{{ big|sort|first }}"
    "{% endfor %}",
    "{% set l = ['x' * 1000000] * 100 %}{{ l|string|length }}",
]


def _compile(source: str, timeout: float = NET):  # noqa: ANN202
    return compile_template("s", source, "t", max_source=256 * 1024, max_output=1024 * 1024,
                            timeout=timeout)


def _render(source: str, timeout: float = NET) -> Exception | None:
    try:
        _compile(source, timeout).render({"first_name": "Ann"})
    except RenderError as exc:
        return exc
    return None


def _stopped_by_work(error: Exception | None) -> bool:
    return error is not None and "time limit" not in str(error)


@pytest.mark.parametrize("source", BOMBS)
def test_each_bomb_is_stopped_by_the_budget(source: str) -> None:
    assert _stopped_by_work(_render(source)), source


@pytest.mark.parametrize("source", BOMBS[:8])
def test_bombs_are_over_budget(source: str) -> None:
    error = _render(source)
    assert isinstance(error, BudgetExceeded) and error.part == "html"


def test_lipsum_and_mutation_are_gone() -> None:
    assert "lipsum" not in _compile("x").html.environment.globals
    error = _render("{% set l = [] %}{{ l.append(1) }}{{ l }}")
    assert error is not None  # ImmutableSandboxedEnvironment: no list.append


def test_the_wall_clock_limit_stops_a_slow_render() -> None:
    # The work a render does is bounded by its steps (a slow step is charged by its size), so
    # no template is slow per step: the net is shown with no time at all. The loop is well
    # within the budget, and the clock, looked at every 256 steps, stops it.
    source = "{% for i in range(2000) %}{{ i }}{% endfor %}"
    assert _render(source) is None
    error = _render(source, timeout=0.0)
    assert isinstance(error, BudgetExceeded) and "time limit" in str(error)


def test_ordinary_templates_fit_the_budget_easily() -> None:
    source = ("{% for p in people %}{{ loop.index }}. {{ p|title|center(20) }} "
              "{{ p|wordwrap(5) }}{% endfor %}{{ people|join(', ') }}"
              "{% macro hi(n) %}Hi {{ n }}{% endmacro %}{{ hi(first_name) }}")
    html = _compile(source).render({"first_name": "Ann", "people": ["ann", "bob"] * 200})[1]
    assert html.endswith("Hi Ann")
    assert WORK_BUDGET >= 100_000


# ---------------------------------------------------------------- hypothesis: hostile shapes

_SEQS = st.sampled_from([
    "range(100000)", "range(10**9)", "'x' * 1000000", "('ab' * 500000)|list", "range(99999)|list",
    "[0] * 1000000", "first_name * 100000", "(range(1000)|join(',')) * 1000",
])
_EXPRS = st.sampled_from([
    "range(100000)|join", "('x' * 1000000)|wordwrap(1)", "'x' * 10**9", "'y' ~ ('x' * 999999)",
    "(first_name * 1000000)|upper", "range(100000)|list|string", "('a' * 100000)|replace('a', 'bb')",
    "'%09999999d' % 1", "'x'|center(10**8)", "('x' * 1000000)|indent(1000)",
    "('x ' * 500000)|wordwrap(2, wrapstring='-' * 100)", "(range(100000)|list) + (range(100000)|list)",
    "x", "loop.index",
])


@st.composite
def hostile_templates(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1, max_value=4))
    body = "{{ " + draw(_EXPRS) + " }}"
    for level in range(depth):
        body = "{% for x in " + draw(_SEQS) + " %}" + body + "{% endfor %}"
        if draw(st.booleans()):
            body = f"{{% macro m{level}(n) %}}{body}{{{{ m{level}(n) }}}}{{% endmacro %}}" \
                   f"{{{{ m{level}(1) }}}}"
    return body


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_templates())
def test_hostile_templates_render_or_are_stopped_by_the_budget(source: str) -> None:
    error = _render(source)
    assert error is None or _stopped_by_work(error), (source, error)


# ---------------------------------------------------------------- 422 at save and preview

def test_over_budget_is_a_422_at_save(cenv, check_error) -> None:
    response = cenv.post("/api/v1/templates", json={
        "name": "t", "subject": "s", "text": "t",
        "html": "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"})
    fields = check_error(response, 422)["fields"]
    assert list(fields) == ["html"] and "steps" in fields["html"][0]
    assert cenv.get("/api/v1/templates").get_json()["items"] == []


def test_data_dependent_bomb_is_saved_and_fails_only_at_send(cenv) -> None:
    """A template that explodes only for some person's data cannot be refused at save: it
    fails that recipient (with the reason) and the batch goes on."""
    list_id = cenv.leads("ann@example.com", first_name="Ann")
    cenv.leads("eve@example.com", first_name="Eve")
    html = ("{% if first_name == 'Eve' %}{% for a in range(100000) %}{% for b in range(100000) %}"
            "x{% endfor %}{% endfor %}{% endif %}Hello {{ first_name }}")
    response = cenv.post("/api/v1/templates", json={"name": "t", "subject": "s", "html": html,
                                                    "text": ""})
    assert response.status_code == 201
    shown = cenv.run(cenv.launched([list_id], response.get_json()["id"]))
    assert cenv.ledger(shown["id"]) == {"ann@example.com": "sent", "eve@example.com": "failed"}
    assert "steps" in shown["last_error"]


def test_over_budget_is_a_422_at_console_preview(cenv) -> None:
    from outreach.campaigns import templates

    draft = templates.preview_draft(cenv.store, cenv.config, {
        "subject": "s", "text": "t", "html": "{{ range(100000)|join('x' * 100000) }}"})
    assert draft["preview"] is None and "html" in draft["errors"]
