"""Assets as records, form rules on intake, sources, Origin refusal, bot checks, public pages."""

from __future__ import annotations

import gzip
import time

import pytest

from outreach.people.assets import RulesCache, load_rules

URL = "/api/v1/registrations"
SUMMIT = {"slug": "summit", "kind": "event", "title": "Summit 2027", "description": "Two days.",
          "starts_at": "2027-03-01T09:00:00+01:00", "location": "Lyon",
          "form": {"fields": ["company", "job_title"], "required": ["company"],
                   "consent_text": "Mail me about the summit.", "thank_you_message": "See you!"}}


def test_create_read_list_patch(env, check_error) -> None:
    created = env.post("/api/v1/assets", json=SUMMIT)
    assert created.status_code == 201, created.get_json()
    asset = created.get_json()
    assert asset["slug"] == "summit" and asset["kind"] == "event"
    assert asset["starts_at"] == "2027-03-01T08:00:00Z"  # stored in UTC
    assert asset["form"]["fields"] == ["company", "job_title"]
    assert asset["form"]["required"] == ["company"]
    assert asset["form"]["consent_text"] == "Mail me about the summit."
    assert asset["form"]["consent_version"] == 1
    assert asset["form_url"].endswith("/f/summit")
    assert 'data-outreach-form="summit"' in asset["embed_snippet"]
    assert "/embed/v1/form.js" in asset["embed_snippet"]
    assert env.get("/api/v1/assets/summit").get_json() == asset
    assert [a["slug"] for a in env.get("/api/v1/assets").get_json()["items"]] == ["summit"]
    check_error(env.post("/api/v1/assets", json=SUMMIT), 409)
    # new consent wording is a new version; the old one stays readable
    patched = env.patch("/api/v1/assets/summit", json={"title": "Summit", "form": {
        "consent_text": "New wording.", "required": ["company", "consent"]}}).get_json()
    assert patched["title"] == "Summit"
    assert patched["form"]["consent_text"] == "New wording."
    assert patched["form"]["consent_version"] == 2
    assert patched["form"]["fields"] == ["company", "job_title"]  # kept
    assert patched["form"]["thank_you_message"] == "See you!"
    from outreach.people.assets import consent_text
    assert consent_text(env.store, "summit", 1) == "Mail me about the summit."
    # same wording again: no new version
    again = env.patch("/api/v1/assets/summit", json={"form": {"consent_text": "New wording."}})
    assert again.get_json()["form"]["consent_version"] == 2
    check_error(env.patch("/api/v1/assets/nope", json={"title": "x"}), 404)
    check_error(env.get("/api/v1/assets/nope"), 404)
    check_error(env.patch("/api/v1/assets/summit", json={"kind": "white_paper"}), 422)
    # a white paper has no date or place, whether or not the PATCH names its kind
    assert env.post("/api/v1/assets", json={"slug": "paper", "kind": "white_paper"}).status_code == 201
    for body in ({"location": "Paris"}, {"starts_at": "2027-03-01T08:00:00Z"}):
        refused = env.patch("/api/v1/assets/paper", json=body)
        check_error(refused, 422)
        assert list(refused.get_json()["error"]["fields"]) == list(body)
    assert env.get("/api/v1/assets/paper").get_json()["location"] is None


@pytest.mark.parametrize("body, field", [
    ({"slug": "Bad Slug", "kind": "event"}, "slug"),
    ({"slug": "a", "kind": "webinar"}, "kind"),
    ({"slug": "a", "kind": "white_paper", "location": "Paris"}, "location"),
    ({"slug": "a", "kind": "event", "form": {"fields": ["password"]}}, "form.fields.0"),
    ({"slug": "a", "kind": "event", "form": {"required": ["website"]}}, "form.required.0"),
    ({"slug": "a", "kind": "event", "form": {"redirect_to": "javascript:alert(1)"}},
     "form.redirect_to"),
    ({"slug": "a", "kind": "event", "starts_at": "tomorrow"}, "starts_at"),
])
def test_bad_assets_are_422_on_the_field(env, check_error, body, field) -> None:
    error = check_error(env.post("/api/v1/assets", json=body), 422)
    assert field in error["fields"], error


def test_assets_need_a_key(env, check_error) -> None:
    check_error(env.client.get("/api/v1/assets"), 401)
    check_error(env.client.post("/api/v1/assets", json=SUMMIT), 401)


def test_unknown_slug_creates_the_asset_and_its_two_lists(env) -> None:
    status = env.registered(asset="new-paper")
    asset = env.get("/api/v1/assets/new-paper").get_json()
    assert asset["kind"] == "white_paper" and asset["title"] == "new-paper"
    assert status["lists"] == [asset["lead_list_id"]]
    lists = {i["id"]: i for i in env.get("/api/v1/lists").get_json()["items"]}
    assert lists[asset["lead_list_id"]]["parallel_list_id"] == asset["contact_list_id"]
    # a marketer can then describe it
    env.patch("/api/v1/assets/new-paper", json={"title": "The new paper"})
    assert env.get("/api/v1/assets/new-paper").get_json()["lead_list_id"] == asset["lead_list_id"]


def test_required_fields_are_enforced_on_every_registration(env, check_error) -> None:
    env.post("/api/v1/assets", json={**SUMMIT, "form": {"required": ["company", "consent"]}})
    error = check_error(env.register(asset="summit", kind="event"), 422)
    assert set(error["fields"]) == {"company", "consent"}
    error = check_error(env.register(asset="summit", kind="event", company="  ",
                                     consent=True), 422)
    assert set(error["fields"]) == {"company"}
    assert env.register(asset="summit", kind="event", company="Acme",
                        consent=True).status_code == 202
    # another asset has no rules
    assert env.register(asset="other").status_code == 202


def test_rules_cache_reads_redis_once_per_interval(env) -> None:
    env.post("/api/v1/assets", json=SUMMIT)
    now = [100.0]
    cache = RulesCache(env.store, ttl=5, clock=lambda: now[0])
    assert cache("summit").required == ("company",)
    env.patch("/api/v1/assets/summit", json={"form": {"required": []}})
    assert cache("summit").required == ("company",)  # cached
    now[0] += 5.1
    assert cache("summit").required == ()
    assert load_rules(env.store, "nothing-here").trivial


def test_sources_first_and_latest(env, check_error) -> None:
    # sources other than web_form, event and referral need an API key (issue 17)
    env.registered(source="trade_show", headers=env.auth)
    env.registered(source="referral", referred_by="Bob@Example.com", asset="other")
    lead = env.get("/api/v1/leads").get_json()["items"][0]
    assert lead["source"] == "trade_show"
    assert lead["latest_source"] == "referral"
    assert lead["referred_by"] == "bob@example.com"
    env.registered("bea@example.com")
    bea = env.get("/api/v1/leads", query_string={"email": "bea@example.com"}).get_json()["items"][0]
    assert bea["source"] == bea["latest_source"] == "web_form"
    check_error(env.register(source="billboard"), 422)
    error = check_error(env.register(source="event", referred_by="bob@example.com"), 422)
    assert "referred_by" in error["fields"]
    check_error(env.register(source="referral", referred_by="not an address"), 422)
    funnel = env.get("/api/v1/funnel", query_string={"by": "source"}).get_json()
    counts = {row["source"]: row["leads"] for row in funnel["items"]}
    assert counts["trade_show"] == 1 and counts["web_form"] == 1 and counts["referral"] == 0
    assert sum(counts.values()) == 2
    check_error(env.get("/api/v1/funnel", query_string={"by": "colour"}), 422)


def test_funnel_by_source_counts_qualified_and_engaged(env) -> None:
    env.registered(source="business_card", consent=True, headers=env.auth)
    lead_id = env.get("/api/v1/leads").get_json()["items"][0]["id"]
    assert env.post(f"/api/v1/leads/{lead_id}/qualify").status_code == 200
    env.registered(email="bo@example.com", source="business_card", consent=True, headers=env.auth)
    env.registered(email="cy@example.com", source="trade_show", consent=True, headers=env.auth)
    rows = {r["source"]: r for r in env.get("/api/v1/funnel?by=source").get_json()["items"]}
    assert rows["business_card"]["qualified"] == 1 and rows["web_form"]["qualified"] == 0
    card = rows["business_card"]
    assert card["leads"] == 2 and card["opportunities"] == {"open": 1, "won": 0, "lost": 0}
    assert card["rates"]["lead_to_qualified"] == 0.5
    opp_id = env.get(f"/api/v1/leads/{lead_id}").get_json()["opportunity_id"]
    env.patch(f"/api/v1/opportunities/{opp_id}", json={"status": "won"})
    card = {r["source"]: r for r in env.get("/api/v1/funnel?by=source").get_json()["items"]}[
        "business_card"]
    assert card["opportunities"] == {"open": 0, "won": 1, "lost": 0}
    assert card["rates"]["opportunity_win"] == 1.0
    # an erased person leaves the counts
    assert env.erase("cy@example.com")["status"] == "done"
    rows = {r["source"]: r for r in env.get("/api/v1/funnel?by=source").get_json()["items"]}
    assert rows["trade_show"]["leads"] == 0
    assert env.client.delete("/api/v1/people/cy@example.com", headers=env.auth).status_code == 202
    rows = {r["source"]: r for r in env.get("/api/v1/funnel?by=source").get_json()["items"]}
    assert rows["trade_show"]["leads"] == 0  # erasing again counts nothing twice


def test_origin_outside_the_allow_list_is_refused(make_env, check_error) -> None:
    with make_env(cors_origins=("https://www.example.com",),
                  base_url="https://forms.outreach.example") as env:
        body = {"kind": "white_paper", "asset": "guide", "email": "a@example.com"}
        check_error(env.client.post(URL, json=body, headers={"Origin": "https://evil.example"}),
                    403)
        check_error(env.client.post(URL, data=body, headers={"Origin": "null"}), 403)
        for origin in ("https://www.example.com", "https://forms.outreach.example",
                       "http://localhost"):  # the test client's own host
            response = env.client.post(URL, json=body, headers={"Origin": origin})
            assert response.status_code == 202, (origin, response.get_json())
        assert env.client.post(URL, json=body).status_code == 202  # no Origin: not a browser
    with make_env() as env:  # no allow-list: nothing is refused
        response = env.client.post(URL, json={"kind": "white_paper", "asset": "g",
                                              "email": "a@example.com"},
                                   headers={"Origin": "https://anywhere.example"})
        assert response.status_code == 202


def _metric(env, name: str) -> int:
    return int(env.store.r.hget(env.store.keys.metrics, name) or 0)


def test_min_fill_time_and_honeypot_are_dropped_and_counted(env) -> None:
    env.post("/api/v1/assets", json={"slug": "guide", "kind": "white_paper",
                                     "form": {"min_fill_seconds": 3}})
    base = {"kind": "white_paper", "asset": "guide", "email": "fast@example.com"}
    fast = env.client.post(URL, data={**base, "_t": str(int(time.time()))})
    assert fast.status_code == 202
    missing = env.client.post(URL, data=base)  # a form post without the form's clock
    assert missing.status_code == 202
    honey = env.client.post(URL, data={**base, "website": "http://spam"})
    assert honey.status_code == 202
    slow = env.client.post(URL, data={**base, "email": "slow@example.com",
                                      "_t": str(int(time.time()) - 10)})
    assert slow.status_code == 202
    api = env.client.post(URL, json={**base, "email": "api@example.com"})  # JSON, no clock
    assert api.status_code == 202
    env.drain()
    emails = sorted(lead["email"] for lead in env.get("/api/v1/leads").get_json()["items"])
    assert emails == ["api@example.com", "slow@example.com"]
    assert _metric(env, "registrations_dropped_too_fast") == 2
    assert _metric(env, "registrations_dropped_honeypot") == 1
    metrics = env.client.get("/metrics").get_data(as_text=True)
    assert "outreach_registrations_dropped_too_fast_total 2" in metrics


def test_hosted_form_page_and_definition(env) -> None:
    assert env.client.get("/f/summit").status_code == 404
    env.post("/api/v1/assets", json=SUMMIT)
    page = env.client.get("/f/summit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # no JavaScript needed: the one script only fills in the browser's time zone, which the
    # form carries disabled (not posted) until then
    assert html.count("<script") == 1 and "Intl.DateTimeFormat" in html
    assert '<input type="hidden" name="timezone" value="" data-outreach-timezone disabled>' in html
    for text in ("Summit 2027", "Mail me about the summit.", 'name="company"',
                 'name="job_title"', 'name="email"', 'name="website"', 'name="thanks"',
                 'action="/api/v1/registrations"'):
        assert text in html, text
    definition = env.client.get("/f/summit.json")
    assert definition.status_code == 200
    assert "max-age" in definition.headers["Cache-Control"]
    body = definition.get_json()
    assert [f["name"] for f in body["fields"]] == ["email", "company", "job_title"]
    assert [f["required"] for f in body["fields"]] == [True, True, False]
    assert body["consent"] == {"text": "Mail me about the summit.", "version": 1,
                               "required": False}
    assert body["thank_you_message"] == "See you!"
    assert env.client.get("/f/nope.json").status_code == 404


def test_plain_form_post_errors_next_to_the_field_and_thank_you(env) -> None:
    env.post("/api/v1/assets", json=SUMMIT)
    form = {"kind": "event", "asset": "summit", "thanks": "1", "_t": "1", "company": "Acme"}
    bad = env.client.post(URL, data={**form, "email": "not-an-address"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="of-summit-email-error" role="alert">Not a valid email address.' in html
    assert 'value="not-an-address"' in html and 'value="Acme"' in html
    missing = env.client.post(URL, data={**form, "email": "a@example.com", "company": ""})
    assert missing.status_code == 422
    assert ('id="of-summit-company-error" role="alert">Missing data for required field.'
            in missing.get_data(as_text=True))
    good = env.client.post(URL, data={**form, "email": "a@example.com"})
    assert good.status_code == 303
    assert good.headers["Location"].endswith("/f/summit/thanks")
    thanks = env.client.get("/f/summit/thanks")
    assert "See you!" in thanks.get_data(as_text=True)
    # a form that is not ours gets the JSON error as before
    plain = env.client.post(URL, data={"kind": "event", "asset": "summit", "email": "x"})
    assert plain.status_code == 422 and plain.get_json()["error"]["fields"]["email"]


def test_embed_script_is_small_cached_and_conditional(env) -> None:
    response = env.client.get("/embed/v1/form.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert "max-age=" in response.headers["Cache-Control"]
    assert len(gzip.compress(response.get_data(), 9)) <= 10 * 1024
    assert "iframe" not in response.get_data(as_text=True).replace("no iframe", "")
    etag = response.headers["ETag"]
    again = env.client.get("/embed/v1/form.js", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_proof_of_work_altcha(env) -> None:
    import base64
    import json

    from altcha import solve_challenge_v1

    env.post("/api/v1/assets", json={"slug": "guide", "kind": "white_paper",
                                     "form": {"proof_of_work": True}})
    assert env.get("/api/v1/assets/guide").get_json()["form"]["proof_of_work"] is True
    assert env.client.get("/f/guide.json").get_json()["proof_of_work"] is True
    challenge = env.client.get("/f/guide/challenge")
    assert challenge.status_code == 200 and challenge.headers["Cache-Control"] == "no-store"
    c = challenge.get_json()
    assert set(c) == {"algorithm", "challenge", "maxnumber", "salt", "signature"}
    solution = solve_challenge_v1(c["challenge"], c["salt"], c["algorithm"], c["maxnumber"])
    payload = base64.b64encode(json.dumps({
        "algorithm": c["algorithm"], "challenge": c["challenge"], "number": solution.number,
        "salt": c["salt"], "signature": c["signature"]}).encode()).decode()
    base = {"kind": "white_paper", "asset": "guide"}
    assert env.client.post(URL, json={**base, "email": "none@example.com"}).status_code == 202
    wrong = base64.b64encode(json.dumps({**json.loads(base64.b64decode(payload)),
                                         "number": solution.number + 1}).encode()).decode()
    assert env.client.post(URL, json={**base, "email": "wrong@example.com",
                                      "altcha": wrong}).status_code == 202
    assert env.client.post(URL, json={**base, "email": "ok@example.com",
                                      "altcha": payload}).status_code == 202
    assert env.client.post(URL, json={**base, "email": "replay@example.com",
                                      "altcha": payload}).status_code == 202
    env.drain()
    assert [lead["email"] for lead in env.get("/api/v1/leads").get_json()["items"]] == [
        "ok@example.com"]
    assert _metric(env, "registrations_dropped_proof_of_work") == 3
    # the hosted page of such an asset carries the script that solves it
    page = env.client.get("/f/guide").get_data(as_text=True)
    assert '<script src="/embed/v1/form.js" async></script>' in page
    assert env.client.get("/f/nope/challenge").status_code == 404
