"""Templates: validation at POST, sandboxed rendering, autoescape, size limits, built-ins."""

from __future__ import annotations

import pytest

from outreach.campaigns import templates
from outreach.mail.rendering import compile_template
from outreach.mail.smtp.messenger import dot_stuffed

BROKEN = "{% if %}"


def body(**overrides: str) -> dict[str, str]:
    return {"name": "Welcome", "subject": "Hi {{ first_name }}", "html": "<p>{{ first_name }}</p>",
            "text": "{{ first_name }}", **overrides}


def test_create_read_and_list(cenv) -> None:
    response = cenv.post("/api/v1/templates", json=body())
    assert response.status_code == 201
    created = response.get_json()
    assert created["id"] and created["created_at"].endswith("Z")
    assert {k: created[k] for k in ("name", "subject", "html", "text")} == body()
    assert cenv.get(f"/api/v1/templates/{created['id']}").get_json() == created
    listed = cenv.get("/api/v1/templates").get_json()
    assert listed == {"items": [created], "next_cursor": None}


def test_templates_need_a_key(cenv, check_error) -> None:
    check_error(cenv.client.post("/api/v1/templates", json=body()), 401)
    check_error(cenv.client.get("/api/v1/templates/builtin"), 401)
    check_error(cenv.get("/api/v1/templates/tp404"), 404)


@pytest.mark.parametrize("field", ["subject", "html", "text"])
def test_compile_error_is_reported_for_its_field(cenv, check_error, field) -> None:
    response = cenv.post("/api/v1/templates", json=body(**{field: "ok\n" + BROKEN}))
    fields = check_error(response, 422)["fields"]
    assert list(fields) == [field]
    assert "line 2" in fields[field][0]
    assert cenv.get("/api/v1/templates").get_json()["items"] == []


def test_every_broken_field_is_reported(cenv, check_error) -> None:
    response = cenv.post("/api/v1/templates",
                         json=body(subject="{{ x", html="{% for %}", text="{% endif %}"))
    assert sorted(check_error(response, 422)["fields"]) == ["html", "subject", "text"]


@pytest.mark.parametrize("missing", ["name", "subject", "html", "text"])
def test_required_fields(cenv, check_error, missing) -> None:
    data = body()
    del data[missing]
    assert missing in check_error(cenv.post("/api/v1/templates", json=data), 422)["fields"]


def test_source_size_limit(make_cenv, check_error) -> None:
    with make_cenv(template_max_source_bytes=100) as env:
        ok = env.post("/api/v1/templates", json=body(html="x" * 100))
        assert ok.status_code == 201
        fields = check_error(env.post("/api/v1/templates", json=body(html="é" * 51)), 422)["fields"]
        assert fields == {"html": ["Longer than 100 bytes."]}  # bytes, not characters
        assert len(env.get("/api/v1/templates").get_json()["items"]) == 1


def test_large_template_within_the_source_limit_is_accepted(cenv) -> None:
    """The marketer API must not refuse (413) a template the source limit allows."""
    html = "<p>" + "x" * (200 * 1024) + "</p>"
    assert len(html) < cenv.config.template_max_source_bytes
    assert cenv.config.max_content_length < len(html)
    response = cenv.post("/api/v1/templates", json=body(html=html))
    assert response.status_code == 201, response.status_code


def test_oversize_body_is_still_refused(cenv, check_error) -> None:
    html = "x" * (7 * cenv.config.template_max_source_bytes)
    check_error(cenv.post("/api/v1/templates", json=body(html=html)), 413)


def test_person_fields_are_escaped_in_html_only(cenv) -> None:
    attack = '<script>alert("x")</script>'
    list_id = cenv.leads("eve@example.com", first_name=attack)
    template_id = cenv.template(subject="For {{ first_name }}", html="<p>Hi {{ first_name }}</p>",
                                text="Hi {{ first_name }}")
    campaign_id = cenv.launched([list_id], template_id)
    assert cenv.run(campaign_id)["stats"]["sent"] == 1
    msg = cenv.messenger.to("eve@example.com")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script>" not in html
    assert "<p>Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</p>" in html
    assert text.strip() == f"Hi {attack}"
    assert msg["Subject"] == f"For {attack}"


def test_compile_time_does_not_evaluate_huge_constants(cenv) -> None:
    """Jinja folds constant expressions while compiling: the sandbox must not let
    ``'x' * 10**10`` allocate gigabytes while a template is merely validated. (Rendering it
    for the sample person at save is over budget whoever it is for: a 422, issue 17.)"""
    response = cenv.post("/api/v1/templates", json=body(html="{{ 'x' * 10**10 }}"))
    assert response.status_code == 422
    assert "html" in response.get_json()["error"]["fields"]


# what leaked values would look like (names of refused attributes may appear in errors)
SECRET_MARKERS = ("unit-test-secret", "Config(", "<class '", "<function ", "<built-in", "environ(",
                  "/work/", "TemplateReference object")

ATTACKS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{% if ''.__class__ %}leak{% endif %}",
    "{% for x in range(10**9) %}x{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}0123456789{% endfor %}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ [0] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 'x'.rjust(10**9) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'|indent(10**9, true) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{w}}'.format(1, w=10**9) }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ ('a' * 100000).replace('a', 'a' * 100000) }}",
    "{{ ('a' * 100000)|replace('a', 'a' * 100000) }}",
]


CASES = [("html", attack) for attack in ATTACKS] + [
    (where, attack) for where in ("text", "subject") for attack in (
        "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}", "{% for x in range(10**9) %}x{% endfor %}",
        "{{ 'x' * 10**9 }}")]


@pytest.mark.parametrize(("where", "attack"), CASES)
def test_injection_and_bombs_fail_only_that_recipient(cenv, where, attack) -> None:
    list_id = cenv.leads("ann@example.com", first_name="Ann")
    cenv.leads("eve@example.com", first_name="Eve")
    sources = {"subject": "Hello", "html": "<p>Hello</p>", "text": "Hello"}
    sources[where] += "{% if first_name == 'Eve' %}" + attack + "{% endif %}"
    response = cenv.post("/api/v1/templates", json={"name": "t", **sources})
    assert response.status_code == 201, response.get_json()
    campaign_id = cenv.launched([list_id], response.get_json()["id"])

    shown = cenv.run(campaign_id)

    assert shown["status"] == "sent"
    assert shown["stats"] == {"targeted": 2, "sent": 1, "failed": 1, "suppressed": 0, "unknown": 0,
                              "opened": 0, "opened_machine": 0, "clicked": 0, "unsubscribed": 0, "bounced": 0,
                              "soft_bounced": 0, "blocked": 0, "complained": 0, "waiting_local": 0}
    assert cenv.ledger(campaign_id) == {"ann@example.com": "sent", "eve@example.com": "failed"}
    assert cenv.messenger.attempts == ["ann@example.com"]
    assert "render failed" in shown["last_error"]
    # a render failure is the template's fault, not the address's: no bounce suppression
    assert cenv.store.r.hget(cenv.store.keys.suppressed, "eve@example.com") is None
    raw = dot_stuffed(cenv.messenger.to("ann@example.com")).decode()
    for marker in SECRET_MARKERS:
        assert marker not in raw
        assert marker not in shown["last_error"]


@pytest.mark.parametrize("source", ["{{ config }}", "{{ request }}", "{{ settings }}",
                                    "{{ missing_variable }}"])
def test_unknown_names_render_empty_and_leak_nothing(cenv, source) -> None:
    list_id = cenv.leads("ann@example.com", first_name="Ann")
    template_id = cenv.template(subject="S" + source, html=f"<p>[{source}]</p>", text=f"[{source}]")
    shown = cenv.run(cenv.launched([list_id], template_id))
    assert shown["stats"]["sent"] == 1
    msg = cenv.messenger.to("ann@example.com")
    assert msg.get_body(("plain",)).get_content().strip() == "[]"
    assert "<p>[]</p>" in msg.get_body(("html",)).get_content()
    assert "unit-test-secret" not in dot_stuffed(msg).decode()


def test_output_limit_counts_the_whole_message(make_cenv) -> None:
    with make_cenv(template_max_output_bytes=1000) as env:
        list_id = env.leads("ann@example.com", first_name="Ann")
        env.leads("eve@example.com", first_name="E" * 190)
        # Eve: 5 * 197 (html) + 190 (text) + 1 (subject) > 1000; Ann far below
        template_id = env.template(subject="s", html="<p>{{ first_name }}</p>" * 5,
                                   text="{{ first_name }}")
        shown = env.run(env.launched([list_id], template_id))
        assert (shown["stats"]["sent"], shown["stats"]["failed"]) == (1, 1)
        assert env.ledger(shown["id"])["eve@example.com"] == "failed"
        assert "output limit" in shown["last_error"]


def test_builtin_templates_compile_and_render(cenv) -> None:
    response = cenv.get("/api/v1/templates/builtin")
    assert response.status_code == 200
    builtins = response.get_json()
    assert {b["name"] for b in builtins} == {"event_reminder", "white_paper_followup"}
    assert builtins == templates.builtin_templates()
    list_id = cenv.leads("ann@example.com", asset="cloud-costs", first_name="Ann", company="Acme")
    for builtin in builtins:
        assert set(builtin) == {"name", "subject", "html", "text"}
        assert "{# subject" not in builtin["html"]
        created = cenv.post("/api/v1/templates", json=builtin)
        assert created.status_code == 201, created.get_json()
        cenv.messenger.messages.clear()
        shown = cenv.run(cenv.launched([list_id], created.get_json()["id"]))
        assert shown["stats"]["sent"] == 1, shown
        msg = cenv.messenger.to("ann@example.com")
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "Ann" in text and "Ann" in html
        assert "{{" not in text + html + msg["Subject"]
        assert "https://mail.example.com/u/" in text  # unsubscribe_url is a variable
        assert "/t/o/" in html


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ first_name|upper }}", "ANN"),
    ("{{ '{:,}'.format(12000000) }}", "12,000,000"),
    ("{{ '%05d' % 42 }} {{ '%(n)s!' % {'n': first_name} }}", "00042 Ann!"),
    ("{{ 'Call 5551234567 %s' % 'now' }}", "Call 5551234567 now"),
    ("{{ '-' * 10 }}{{ 3 * 'ab' }}{{ [1, 2] * 2 }}", "----------ababab[1, 2, 1, 2]"),
    ("{{ 2 ** 10 }} {{ 2.5 ** 2 }}", "1024 6.25"),
    ("[{{ 'x'|center(5) }}]{{ 'ab'.rjust(4, '.') }}", "[  x  ]..ab"),
    ("{{ 'a-b'|replace('-', ' and ') }}{{ 'a-b'.replace('-', '+') }}", "a and ba+b"),
    ("{{ 'l1\nl2'|indent(2) }}", "l1\n  l2"),
    ("{{ '%s=%d'|format('n', 3) }}", "n=3"),
    ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
    ("{{ missing or 'there' }}", "there"),
])
def test_ordinary_expressions_still_render(source, expected) -> None:
    compiled = compile_template("s", source, source, max_source=10_000, max_output=10_000)
    _, _, text = compiled.render({"first_name": "Ann"})
    assert text == expected
