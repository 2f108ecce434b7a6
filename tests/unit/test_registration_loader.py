"""load_registration: the hand-written fast path must decide exactly as RegistrationIn does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

from outreach.people import registration as intake
from outreach.people.registration import RegistrationIn, load_registration

SCHEMA = RegistrationIn()
TYPICAL = {
    "kind": "white_paper",
    "asset": "zero-trust-guide",
    "email": " Ada.Lovelace+papers@Example.COM ",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines Ltd",
    "job_title": "Head of Research",
    "country": "GB",
    "consent": True,
    "utm_source": "newsletter",
    "tracking_id": "ignored: not a field",
}


def schema_outcome(data: Any) -> tuple[str, Any]:
    try:
        return "ok", SCHEMA.load(data)
    except ValidationError as exc:
        return "error", exc.messages


def loader_outcome(data: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", load_registration(data)
    except ValidationError as exc:
        return "error", exc.messages


# --- the usual posts take the fast path and give the schema's answer --------------------


@pytest.mark.parametrize("body", [
    TYPICAL,
    {"kind": "event", "asset": "summit-2026", "email": "a@b.co"},
    # what an HTML form sends: every value a string, consent as "on"/"yes"/"false"
    {"kind": "event", "asset": "summit", "email": "a@b.co", "consent": "on", "first_name": ""},
    {"kind": "event", "asset": "summit", "email": "a@b.co", "consent": "false", "website": ""},
    {"kind": "event", "asset": "summit", "email": "a@b.co", "redirect_to": "https://x.example/t"},
    {"kind": "event", "asset": "summit", "email": "a@b.co", "source": "trade_show"},
    {"kind": "event", "asset": "summit", "email": "a@b.co", "source": "referral",
     "referred_by": " Bob@Example.com"},
])
def test_usual_posts_take_the_fast_path_with_the_schemas_result(body: dict[str, Any]) -> None:
    fast = intake._load_plain(dict(body))
    assert fast is not None
    assert fast == SCHEMA.load(dict(body))


def test_normalises_the_address_like_the_schema() -> None:
    assert load_registration(dict(TYPICAL))["email"] == "ada.lovelace+papers@example.com"


@pytest.mark.parametrize("body", [
    {**TYPICAL, "kind": "webinar"},
    {**TYPICAL, "asset": "Guide"},
    {**TYPICAL, "asset": "guide\n"},
    {**TYPICAL, "email": "not-an-address"},
    {**TYPICAL, "first_name": None},
    {**TYPICAL, "first_name": "x" * 201},
    {**TYPICAL, "phone": "1" * 41},
    {**TYPICAL, "consent": "maybe"},
    {**TYPICAL, "consent": 1},  # valid for the schema, but its business
    {**TYPICAL, "company": "Acme \ud800"},
    {**TYPICAL, "city": ["Paris"]},
    {"asset": "guide", "email": "a@b.co"},
])
def test_anything_unusual_is_left_to_the_schema(body: dict[str, Any]) -> None:
    assert intake._load_plain(body) is None
    assert loader_outcome(body) == schema_outcome(body)


# --- property: for any input, same decision, same output, same messages -----------------

_text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=12)
_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
_values = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=2),
    st.sampled_from(["event", "white_paper", "guide", "summit-2026", "a@example.com",
                     " A.B+x@Example.CO ", "ann@exa mple.com", "", "on", "off", "True", "0",
                     "x" * 40, "x" * 41, "x" * 200, "x" * 201, "guide\n", "Ünïcode",
                     "e\u0301@example.com", "referral", "trade_show", "web_form"]),
)
_field_names = st.sampled_from(sorted(RegistrationIn().fields) + ["unknown", "Email", "id"])
_valid_core = st.fixed_dictionaries({
    "kind": st.sampled_from(["event", "white_paper"]),
    "asset": st.from_regex(r"\A[a-z0-9-]{1,80}\Z"),
    "email": st.emails() | st.sampled_from(["  Ann.Smith@Example.COM ", "x@y.z"]),
})


@settings(max_examples=600, deadline=None)
@given(core=_valid_core, extra=st.dictionaries(_field_names, _values, max_size=8),
       drop=st.sets(st.sampled_from(["kind", "asset", "email"]), max_size=1))
def test_loader_and_schema_agree_on_any_body(core, extra, drop) -> None:
    body = {**core, **extra}
    for name in drop:
        body.pop(name, None)
    expected = schema_outcome(dict(body))
    assert loader_outcome(dict(body)) == expected
    fast = intake._load_plain(dict(body))
    if fast is not None:
        assert ("ok", fast) == expected


_form_text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=45) | \
    st.sampled_from(["on", "off", "yes", "0", "x" * 200, "x" * 201, "referral", "b@c.de"])


@settings(max_examples=400, deadline=None)
@given(form=st.dictionaries(_field_names, _form_text, max_size=10), core=_valid_core)
def test_loader_and_schema_agree_on_form_posts(form, core) -> None:
    body = {**core, **form}  # forms: every value is a string
    expected = schema_outcome(dict(body))
    assert loader_outcome(dict(body)) == expected
    fast = intake._load_plain(dict(body))
    if expected[0] == "ok":
        # a valid all-text post never needs the schema: the fast path is not just a detour
        assert fast == expected[1]
    else:
        assert fast is None


# --- the fast path is derived from the schema, and refuses fields it does not know ------


def test_text_limits_come_from_the_schema() -> None:
    limits = dict(intake._TEXT_LIMITS)
    assert limits["first_name"] == 200 and limits["phone"] == 40 and limits["redirect_to"] == 2000
    assert limits["website"] is None
    assert set(limits) | {"kind", "asset", "email", "consent", "source", "referred_by",
                          "timezone"} == set(RegistrationIn().fields)


@pytest.mark.parametrize("zone", ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires",
                                  "Mars/Olympus", "", " Europe/Paris", "../etc/passwd", 7, None])
def test_loader_and_schema_agree_on_time_zones(zone: Any) -> None:
    body = {"kind": "white_paper", "asset": "guide", "email": "ann@example.com", "timezone": zone}
    try:
        expected: Any = RegistrationIn().load(body)
    except ValidationError:
        expected = None
    fast = intake._load_plain(body)
    assert fast == expected if fast is not None else True
    assert (expected is None) == (zone not in ("Europe/Paris", "UTC",
                                               "America/Argentina/Buenos_Aires"))


def test_a_field_the_fast_path_cannot_check_is_refused_at_import() -> None:
    class WithNumber(Schema):
        employees = fields.Integer()

    class WithPattern(Schema):
        code = fields.String(validate=validate.Regexp(r"^[A-Z]+$"))

    for schema in (WithNumber, WithPattern):
        with pytest.raises(TypeError, match="teach load_registration"):
            intake._plain_text_limits(schema)


def test_a_usual_post_never_reaches_the_schema(monkeypatch) -> None:
    def refuse(_data: Any) -> None:
        raise AssertionError("the schema was used for a usual post")

    monkeypatch.setattr(intake._schema, "load", refuse)
    assert load_registration(dict(TYPICAL))["kind"] == "white_paper"
