"""POST /api/v1/registrations and GET /api/v1/registrations/<id>: the public intake contract."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

URL = "/api/v1/registrations"
STREAM_ID = re.compile(r"^\d+-\d+$")
FULL = {
    "kind": "event",
    "asset": "summit-2026",
    "email": "  Ann.Smith@Example.COM ",
    "first_name": "Ann",
    "last_name": "Smith",
    "job_title": "CTO",
    "company": "Acme",
    "phone": "+33 1 23 45 67 89",
    "mobile_phone": "+33 6 00 00 00 00",
    "street": "1 rue de la Paix",
    "city": "Paris",
    "state": "IDF",
    "postal_code": "75002",
    "country": "FR",
    "consent": True,
    "topic": "Summit",
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "fall",
}


def stream_length(env) -> int:
    return env.store.r.xlen(env.store.keys.intake_stream)


# --- accepted, then processed ---------------------------------------------------------


def test_accepted_then_processed_with_person_and_lists(env) -> None:
    response = env.client.post(URL, json=FULL)
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"id", "status"} and body["status"] == "accepted"
    assert STREAM_ID.match(body["id"])
    assert stream_length(env) == 1  # durably stored before the answer
    assert env.kicks == [1]

    status = env.get(f"{URL}/{body['id']}").get_json()
    assert status["id"] == body["id"]
    assert status["status"] == "accepted"
    assert not status.get("person") and not status.get("lists")

    assert env.drain().processed == 1
    status = env.get(f"{URL}/{body['id']}").get_json()
    assert status["status"] == "processed"
    assert status["person"]["type"] == "lead"
    lead = env.get(f"/api/v1/leads/{status['person']['id']}").get_json()
    assert lead["email"] == "ann.smith@example.com"
    for name in ("first_name", "last_name", "job_title", "company", "phone", "mobile_phone",
                 "street", "city", "state", "postal_code", "country", "topic"):
        assert lead[name] == FULL[name]
    assert lead["consent"] is True
    assert lead["registrations"][0]["kind"] == "event"
    assert lead["registrations"][0]["asset"] == "summit-2026"
    (list_id,) = status["lists"]
    the_list = env.get(f"/api/v1/lists/{list_id}").get_json()
    assert the_list["member_type"] == "lead"
    assert the_list["asset"] == {"kind": "event", "slug": "summit-2026"}
    assert stream_length(env) == 0  # applied entries are acknowledged and deleted


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "multipart/form-data"])
def test_form_bodies(env, content_type: str) -> None:
    form = {"kind": "white_paper", "asset": "guide", "email": "Bob@Example.com",
            "first_name": "Bob", "consent": "on", "website": ""}
    response = env.client.post(URL, data=form, content_type=content_type)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "accepted"
    env.drain()
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert (lead["email"], lead["first_name"], lead["consent"]) == ("bob@example.com", "Bob", True)


def test_json_suffix_content_type_is_json(env) -> None:
    body = json.dumps({"kind": "event", "asset": "x", "email": "a@example.com"})
    response = env.client.post(URL, data=body, content_type="application/vnd.api+json")
    assert response.status_code == 202


def test_unknown_fields_are_ignored(env) -> None:
    response = env.register(favourite_colour="blue", nested={"a": [1, 2]})
    assert response.status_code == 202
    env.drain()
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert "favourite_colour" not in lead


def test_topic_defaults_to_kind_and_asset(env) -> None:
    status = env.registered(kind="white_paper", asset="cloud-guide")
    lead = env.get(f"/api/v1/leads/{status['person']['id']}").get_json()
    assert lead["topic"] == "white_paper: cloud-guide"
    assert lead["consent"] is False  # consent defaults to false


def test_unknown_and_malformed_registration_ids_are_404(env, check_error) -> None:
    for rid in ("0-0", "1-1", "nope", "99999999999999999999-0", "18446744073709551616-1",
                "1-99999999999999999999"):
        check_error(env.get(f"{URL}/{rid}"), 404, "not_found")


def test_registration_status_needs_an_api_key(env, check_error) -> None:
    rid = env.register().get_json()["id"]
    check_error(env.client.get(f"{URL}/{rid}"), 401, "unauthorized")


# --- errors ---------------------------------------------------------------------------


def test_validation_errors_are_per_field(env, check_error) -> None:
    response = env.client.post(URL, json={"kind": "webinar", "asset": "Not A Slug!",
                                          "email": "not-an-email", "first_name": "x" * 201,
                                          "phone": "1" * 41, "consent": "maybe"})
    fields = check_error(response, 422, "validation_failed")["fields"]
    assert set(fields) == {"kind", "asset", "email", "first_name", "phone", "consent"}
    assert fields["email"] == ["Not a valid email address."]
    assert stream_length(env) == 0
    assert env.kicks == []


def test_missing_required_fields(env, check_error) -> None:
    fields = check_error(env.client.post(URL, json={}), 422)["fields"]
    assert set(fields) == {"kind", "asset", "email"}


@pytest.mark.parametrize("asset", ["", "a" * 81, "UPPER", "with space", "a_b", "a:b", "é",
                                   "guide\n", "\nguide", 5, None, ["guide"]])
def test_asset_slug_rule(env, check_error, asset) -> None:
    check_error(env.register(asset=asset), 422)


def test_asset_slug_limits_are_accepted(env) -> None:
    assert env.register(asset="a" * 80).status_code == 202
    assert env.register(asset="0-9-a-z").status_code == 202


@pytest.mark.parametrize("body", ["{", "{'kind': 1}", "null", "\xff\xfe",
                                  "[" * 20000 + "]" * 20000])  # nested past the parser's limit
def test_malformed_json_is_400(env, check_error, body: str) -> None:
    response = env.client.post(URL, data=body.encode("latin-1"), content_type="application/json")
    check_error(response, 400, "bad_request")
    assert stream_length(env) == 0


@pytest.mark.parametrize("body", [[], [1, 2], "text", 42, True])
def test_json_that_is_not_an_object_is_400(env, check_error, body) -> None:
    check_error(env.client.post(URL, json=body), 400, "bad_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/png"])
def test_wrong_content_type_is_415(env, check_error, content_type: str) -> None:
    response = env.client.post(URL, data=b"kind=event", content_type=content_type)
    check_error(response, 415, "unsupported_media_type")


def test_no_body_is_a_validation_error(env, check_error) -> None:
    check_error(env.client.post(URL), 422)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_oversize_body_is_413(env, check_error, content_type: str) -> None:
    size = env.config.max_content_length + 1
    response = env.client.post(URL, data=b"a" * size, content_type=content_type)
    check_error(response, 413, "payload_too_large")
    assert stream_length(env) == 0


def test_oversize_field_in_a_small_body_is_422_not_413(env, check_error) -> None:
    check_error(env.register(company="x" * 5000), 422)


def test_lone_surrogates_are_rejected_not_a_crash(env, check_error) -> None:
    body = '{"kind":"event","asset":"x","email":"a@example.com","first_name":"\\ud800"}'
    response = env.client.post(URL, data=body, content_type="application/json")
    assert check_error(response, 422)["fields"] == {"first_name": ["Not valid Unicode text."]}
    body = '{"kind":"event","asset":"x","email":"\\udfffa@example.com"}'
    check_error(env.client.post(URL, data=body, content_type="application/json"), 422)
    assert stream_length(env) == 0


def test_wrong_method_is_405_in_the_error_shape(env, check_error) -> None:
    response = env.client.delete(URL)
    check_error(response, 405)
    assert "POST" in response.headers["Allow"]


# --- honeypot -------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"kind": "event", "asset": "x", "email": "bot@example.com", "website": "http://spam"},
    {"email": "junk", "website": "x"},  # a bot gets no hint from validation either
])
def test_filled_honeypot_is_accepted_and_dropped(env, body) -> None:
    response = env.client.post(URL, json=body)
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"
    assert STREAM_ID.match(response.get_json()["id"])
    assert stream_length(env) == 0
    assert env.kicks == []
    env.drain()
    assert env.get("/api/v1/leads").get_json()["items"] == []


def test_honeypot_form_post_with_allowed_redirect_still_redirects(make_env) -> None:
    with make_env(cors_origins=("https://www.example.com",)) as env:
        response = env.client.post(URL, data={"kind": "event", "asset": "x",
                                              "email": "bot@example.com", "website": "spam",
                                              "redirect_to": "https://www.example.com/thanks"})
        assert response.status_code == 303
        assert stream_length(env) == 0


def test_honeypot_form_post_with_disallowed_redirect_is_still_a_quiet_202(make_env) -> None:
    with make_env(cors_origins=("https://www.example.com",)) as env:
        response = env.client.post(URL, data={"kind": "event", "asset": "x", "website": "spam",
                                              "email": "bot@example.com",
                                              "redirect_to": "https://evil.example.net/"})
        assert response.status_code == 202
        assert stream_length(env) == 0


def test_honeypot_posts_do_not_use_up_the_rate_limit(make_env) -> None:
    with make_env(intake_rate_limit="1/hour") as env:
        for _ in range(3):
            assert env.register(website="spam").status_code == 202
        assert env.register().status_code == 202
        assert env.register().status_code == 429


def test_empty_honeypot_is_a_normal_registration(env) -> None:
    assert env.register(website="").status_code == 202
    assert stream_length(env) == 1


# --- idempotency ----------------------------------------------------------------------


def test_idempotency_key_returns_the_same_id_and_stores_once(env) -> None:
    headers = {"Idempotency-Key": "form-123"}
    first = env.register(headers=headers)
    second = env.register(headers=headers, first_name="changed")
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] == second.get_json()["id"]
    assert stream_length(env) == 1
    env.drain()
    third = env.register(headers=headers)
    assert third.get_json()["id"] == first.get_json()["id"]
    assert stream_length(env) == 0
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert len(lead["registrations"]) == 1
    assert lead["first_name"] is None


def test_different_idempotency_keys_store_twice(env) -> None:
    a = env.register(headers={"Idempotency-Key": "a"}).get_json()["id"]
    b = env.register(headers={"Idempotency-Key": "b"}).get_json()["id"]
    c = env.register().get_json()["id"]
    d = env.register().get_json()["id"]
    assert len({a, b, c, d}) == 4
    assert stream_length(env) == 4


# --- ingest kick ----------------------------------------------------------------------


def test_every_stored_registration_asks_for_ingest(env) -> None:
    env.register()
    env.register(email="bob@example.com")
    env.register(email="bad")  # 422: nothing stored, no kick
    assert env.kicks == [1, 1]


def test_kicker_publishes_at_most_once_per_interval() -> None:
    from outreach.people.intake import IngestKicker

    now = [100.0]
    sent: list[float] = []
    kicker = IngestKicker(lambda: sent.append(now[0]), interval=2.0, clock=lambda: now[0])
    for t in (100.0, 100.5, 101.9, 102.0, 102.1, 105.0):
        now[0] = t
        kicker()
    assert sent == [100.0, 102.0, 105.0]


# --- rate limit -----------------------------------------------------------------------


def test_rate_limit_per_client_address(make_env, check_error) -> None:
    with make_env(intake_rate_limit="3/hour") as env:
        for _ in range(3):
            assert env.register().status_code == 202
        response = env.register()
        check_error(response, 429, "rate_limited")
        retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= 3600
        assert stream_length(env) == 3
        other = env.client.post(URL, json={"kind": "event", "asset": "x", "email": "b@example.com"},
                                environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert other.status_code == 202


def test_no_rate_limit_when_turned_off(env) -> None:
    for i in range(40):
        assert env.register(email=f"p{i}@example.com").status_code == 202


# --- redirects for form posts ---------------------------------------------------------

FORM = {"kind": "event", "asset": "x", "email": "ann@example.com"}


@pytest.mark.parametrize("target", [
    "https://www.example.com/thanks?x=1",
    "https://WWW.EXAMPLE.COM/thanks",
    "https://partner.example.org/done",
    "http://localhost:8000/thanks",  # the service's own base URL
])
def test_allowed_redirect_is_303(make_env, target: str) -> None:
    with make_env(cors_origins=("https://www.example.com",),
                  redirect_allow_list=("https://partner.example.org",)) as env:
        response = env.client.post(URL, data={**FORM, "redirect_to": target})
        assert response.status_code == 303
        assert response.headers["Location"].lower() == target.lower()  # hosts are caseless
        assert stream_length(env) == 1


@pytest.mark.parametrize("target", [
    "https://evil.example.net/",
    "https://www.example.com.evil.net/",
    "https://www.example.com@evil.net/",
    "//evil.net/",
    "javascript:alert(1)",
    "ftp://www.example.com/",
    "http://www.example.com/",  # scheme is part of the origin
    "/relative",
])
def test_disallowed_redirect_is_422_and_not_stored(make_env, check_error, target: str) -> None:
    with make_env(cors_origins=("https://www.example.com",)) as env:
        response = env.client.post(URL, data={**FORM, "redirect_to": target})
        assert "redirect_to" in check_error(response, 422)["fields"]
        assert stream_length(env) == 0


def test_form_without_redirect_answers_json(env) -> None:
    response = env.client.post(URL, data=FORM)
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"


def test_redirect_to_is_ignored_on_json_posts(env) -> None:
    response = env.register(redirect_to="https://evil.example.net/")
    assert response.status_code == 202


# --- CORS -----------------------------------------------------------------------------


def test_cors_headers_only_for_allowed_origins(make_env) -> None:
    with make_env(cors_origins=("https://www.example.com",)) as env:
        allowed = env.client.post(URL, json=FORM, headers={"Origin": "https://www.example.com"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
        assert "Origin" in allowed.headers["Vary"]
        denied = env.client.post(URL, json=FORM, headers={"Origin": "https://evil.example.net"})
        # API.md: with OUTREACH_CORS_ORIGINS set, another origin's registration is refused
        assert denied.status_code == 403
        assert denied.get_json()["error"]["code"] == "forbidden"
        assert "Access-Control-Allow-Origin" not in denied.headers
        none = env.client.post(URL, json=FORM)
        assert "Access-Control-Allow-Origin" not in none.headers
        error = env.client.post(URL, json={}, headers={"Origin": "https://www.example.com"})
        assert error.status_code == 422
        assert error.headers["Access-Control-Allow-Origin"] == "https://www.example.com"


def test_cors_preflight(make_env) -> None:
    with make_env(cors_origins=("https://www.example.com",)) as env:
        response = env.client.options(URL, headers={
            "Origin": "https://www.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        })
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
        denied = env.client.options(URL, headers={"Origin": "https://evil.example.net",
                                                  "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in denied.headers


def test_cors_wildcard(make_env) -> None:
    with make_env(cors_origins=("*",)) as env:
        response = env.client.post(URL, json=FORM, headers={"Origin": "https://any.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_no_cors_without_configured_origins(env) -> None:
    response = env.client.post(URL, json=FORM, headers={"Origin": "https://www.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_on_marketer_endpoints(make_env) -> None:
    with make_env(cors_origins=("https://www.example.com",)) as env:
        response = env.client.get("/api/v1/leads", headers={**env.auth,
                                                             "Origin": "https://www.example.com"})
        assert "Access-Control-Allow-Origin" not in response.headers


# --- fuzz: nothing a client sends gives a 5xx -----------------------------------------

_text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
_field_values = st.one_of(
    _json,
    st.sampled_from(["event", "white_paper", "guide", "a@example.com", " A@B.CO ", "", "on"]),
)
_names = st.sampled_from(["kind", "asset", "email", "first_name", "consent", "website", "topic",
                          "redirect_to", "phone", "country", "utm_source"])
_bodies = st.one_of(
    _json,
    st.dictionaries(_names, _field_values, max_size=8),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["event", "white_paper"]), "asset": st.just("guide"),
         "email": st.just("fuzz@example.com")},
        optional={"first_name": _json, "consent": _json, "website": _json, "topic": _json,
                  "redirect_to": _json, "mobile_phone": _json},
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies)
def test_random_json_bodies_never_give_a_5xx(fuzz_env, check_error, body) -> None:
    data = json.dumps(body)  # ASCII: lone surrogates travel as \\udxxx escapes
    response = fuzz_env.client.post(URL, data=data, content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code != 202:
        check_error(response, response.status_code)
        return
    # what was accepted can also be processed and read back
    fuzz_env.drain()
    status = fuzz_env.get(f"{URL}/{response.get_json()['id']}")
    assert status.status_code in (200, 404)  # 404: a dropped honeypot post
    if status.status_code == 200:
        assert status.get_json()["status"] == "processed"
        person = status.get_json()["person"]
        assert fuzz_env.get(f"/api/v1/{person['type']}s/{person['id']}").status_code == 200


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=200),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=b", "multipart/form-data",
                                     "text/plain", ""]))
def test_random_bytes_never_give_a_5xx(fuzz_env, body: bytes, content_type: str) -> None:
    response = fuzz_env.client.post(URL, data=body, content_type=content_type)
    assert response.status_code < 500, response.get_data(as_text=True)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_names, st.text(max_size=20), max_size=8))
def test_random_forms_never_give_a_5xx(fuzz_env, form: dict[str, str]) -> None:
    response = fuzz_env.client.post(URL, data=form)
    assert response.status_code < 500, response.get_data(as_text=True)


@pytest.fixture(scope="module")
def fuzz_env(make_env):
    """One app for the fuzz tests: what they post must never matter to each other."""
    with make_env(cors_origins=("https://www.example.com",)) as env:
        yield env


def test_behind_a_trusted_proxy_the_rate_limit_is_per_forwarded_client(make_env):
    with make_env(trusted_proxies=1, intake_rate_limit="1/minute") as env:
        first = env.register("a@example.com", headers={"X-Forwarded-For": "203.0.113.1"})
        other = env.register("b@example.com", headers={"X-Forwarded-For": "203.0.113.2"})
        again = env.register("c@example.com", headers={"X-Forwarded-For": "203.0.113.2"})
        assert (first.status_code, other.status_code, again.status_code) == (202, 202, 429)


def test_an_unreachable_store_answers_503_in_the_error_shape(check_error) -> None:
    import outreach

    app = outreach.create_app({"redis_url": "redis://127.0.0.1:1/0", "key_prefix": "down",
                               "intake_rate_limit": "0", "broker_url": "memory://"})
    response = app.test_client().post(URL, json=FORM)
    check_error(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "1"
