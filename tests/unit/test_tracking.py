"""Tracking and unsubscribe: signed tokens, counted once, scores, no open redirect."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from outreach.campaigns import model
from outreach.tokens import Tokens

HTML = ('<p>Hi {{ first_name }}</p><a href="https://example.com/one">1</a>'
        '<a href="https://example.com/two?a=1&amp;b=2">2</a>')


@pytest.fixture
def sent(cenv):
    """A sent campaign to ann and bob; returns (env, campaign id, tokens by address)."""
    list_id = cenv.leads("ann@example.com", "bob@example.com", first_name="Ann")
    campaign_id = cenv.launched([list_id], cenv.template(html=HTML))
    assert cenv.run(campaign_id)["stats"]["sent"] == 2
    tokens = {}
    for address in ("ann@example.com", "bob@example.com"):
        msg = cenv.messenger.to(address)
        html = msg.get_body(("html",)).get_content()
        (unsubscribe,) = re.findall(r"<(https://[^>]+)>", msg["List-Unsubscribe"])
        tokens[address] = {
            "open": re.search(r"/t/o/([^\"]+)\"", html).group(1),
            "clicks": re.findall(r"/t/c/([^\"]+)\"", html),
            "unsubscribe": urlsplit(unsubscribe).path.rsplit("/", 1)[1],
        }
    return cenv, campaign_id, tokens


def score(env, address: str) -> int:
    return env.lead_of(address)["score"]


def events(env, address: str) -> list[str]:
    lead = env.lead_of(address)
    return env.store.r.lrange(env.store.keys.person_events(f"l:{lead['id']}"), 0, -1)


def test_open_pixel_counts_once(sent) -> None:
    env, campaign_id, tokens = sent
    base = score(env, "ann@example.com")
    for _ in range(5):
        response = env.client.get(f"/t/o/{tokens['ann@example.com']['open']}")
        assert response.status_code == 200
        assert response.mimetype == "image/gif"
        assert response.data.startswith(b"GIF89a")
        assert "no-store" in response.headers["Cache-Control"]
    assert env.show(campaign_id)["stats"]["opened"] == 1
    assert score(env, "ann@example.com") == base + env.config.score_open
    assert score(env, "bob@example.com") == base
    assert len([e for e in events(env, "ann@example.com") if e.startswith("open|")]) == 1
    env.client.get(f"/t/o/{tokens['bob@example.com']['open']}")
    assert env.show(campaign_id)["stats"]["opened"] == 2


def test_click_redirects_to_the_stored_link(sent, monkeypatch) -> None:
    env, campaign_id, tokens = sent
    ann = tokens["ann@example.com"]["clicks"]
    assert len(ann) == 2
    base = score(env, "ann@example.com")
    first = env.client.get(f"/t/c/{ann[0]}")
    assert first.status_code == 302
    assert first.headers["Location"] == "https://example.com/one"
    # a person clicks the second link later (every link within a second: a link scanner)
    later = model.now() + 30
    monkeypatch.setattr(model, "now", lambda: later)
    second = env.client.get(f"/t/c/{ann[1]}")
    assert second.headers["Location"] == "https://example.com/two?a=1&b=2"
    for _ in range(3):  # repeated clicks: same redirect, no more score
        assert env.client.get(f"/t/c/{ann[0]}").headers["Location"] == "https://example.com/one"
    cfg = env.config
    # two distinct links score twice; the click also proves the open (once)
    assert score(env, "ann@example.com") == base + 2 * cfg.score_click + cfg.score_open
    stats = env.show(campaign_id)["stats"]
    assert (stats["clicked"], stats["opened"]) == (1, 1)  # people, not clicks
    env.client.get(f"/t/o/{tokens['ann@example.com']['open']}")
    assert score(env, "ann@example.com") == base + 2 * cfg.score_click + cfg.score_open
    env.client.get(f"/t/c/{tokens['bob@example.com']['clicks'][1]}")
    stats = env.show(campaign_id)["stats"]
    assert (stats["clicked"], stats["opened"]) == (2, 2)
    assert score(env, "bob@example.com") == base + cfg.score_click + cfg.score_open


def test_the_same_link_in_two_messages_is_one_stored_link(sent) -> None:
    env, campaign_id, tokens = sent
    links = env.store.r.hgetall(env.store.keys.campaign_links(campaign_id))
    assert sorted(links.values()) == ["https://example.com/one", "https://example.com/two?a=1&b=2"]


def flip(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def bad_tokens(env, campaign_id, tokens) -> list[tuple[str, str]]:
    ann = tokens["ann@example.com"]
    lead_id = env.lead_of("ann@example.com")["id"]
    link_id = next(iter(env.store.r.hkeys(env.store.keys.campaign_links(campaign_id))))
    other_key = Tokens("another-secret")
    ours = Tokens(env.config.secret_key)
    return [
        ("o", flip(ann["open"])),
        ("c", flip(ann["clicks"][0])),
        ("o", ann["open"][:-1]),
        ("c", ann["clicks"][0] + "x"),
        ("c", ann["open"]),  # an open token used as a click
        ("o", ann["clicks"][0]),  # a click token used as an open
        ("c", ann["unsubscribe"]),
        ("o", ann["unsubscribe"]),
        ("o", other_key.sign("open", [campaign_id, f"l:{lead_id}"])),
        ("c", other_key.sign("click", [campaign_id, f"l:{lead_id}", link_id])),
        # signed with our key, but the "link" is a URL: clicks only map stored link ids
        ("c", ours.sign("click", [campaign_id, f"l:{lead_id}", "https://evil.example/"])),
        ("c", ours.sign("click", [campaign_id, f"l:{lead_id}", "0123456789ab"])),
        ("c", ours.sign("click", ["cp404", f"l:{lead_id}", link_id])),
        ("o", ours.sign("open", [campaign_id])),
        ("o", ours.sign("open", [campaign_id, 42])),
        ("c", ours.sign("click", {"url": "https://evil.example/"})),
        ("o", "not-a-token"),
        ("c", "e30.bad"),
    ]


def test_tampered_tokens_are_404_and_record_nothing(sent, check_error) -> None:
    env, campaign_id, tokens = sent
    base = score(env, "ann@example.com")
    before = env.show(campaign_id)["stats"]
    for kind, token in bad_tokens(env, campaign_id, tokens):
        response = env.client.get(f"/t/{kind}/{token}")
        check_error(response, 404, "not_found")
        assert "Location" not in response.headers
    assert env.show(campaign_id)["stats"] == before
    assert score(env, "ann@example.com") == base
    assert events(env, "ann@example.com") == []
    assert env.store.r.hlen(env.store.keys.campaign_seen(campaign_id)) == 0


def test_tampered_unsubscribe_tokens_change_nothing(sent) -> None:
    env, campaign_id, tokens = sent
    ann = tokens["ann@example.com"]
    forged = Tokens("another-secret").sign("unsubscribe", [campaign_id, "l:ld1"])
    for token in (flip(ann["unsubscribe"]), ann["open"], ann["clicks"][0], forged):
        assert env.client.get(f"/u/{token}").status_code == 404
        response = env.client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404
    assert env.store.r.hlen(env.store.keys.suppressed) == 0
    assert env.lead_of("ann@example.com")["consent"] is True
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 0


def test_unsubscribe_confirm_page_changes_nothing(sent) -> None:
    env, campaign_id, tokens = sent
    response = env.client.get(f"/u/{tokens['ann@example.com']['unsubscribe']}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "ann@example.com" in page
    assert '<form method="post">' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert env.store.r.hget(env.store.keys.suppressed, "ann@example.com") is None
    assert env.lead_of("ann@example.com")["consent"] is True
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 0


def test_one_click_unsubscribe(sent) -> None:
    env, campaign_id, tokens = sent
    path = f"/u/{tokens['ann@example.com']['unsubscribe']}"
    response = env.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert env.store.r.hget(env.store.keys.suppressed, "ann@example.com") == "unsubscribed"
    assert env.lead_of("ann@example.com")["consent"] is False
    assert env.lead_of("bob@example.com")["consent"] is True
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 1
    again = env.client.post(path, data={"List-Unsubscribe": "One-Click"})  # idempotent
    assert again.status_code == 200
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 1
    # the confirm page's own form posts the same field from a browser
    browser = env.client.post(path, data={"List-Unsubscribe": "One-Click"},
                              headers={"Accept": "text/html"})
    assert browser.status_code == 200 and "unsubscribed" in browser.get_data(as_text=True)

    list_id = env.asset_list("guide", "lead")
    env.messenger.messages.clear()
    later = env.launched([list_id])
    shown = env.run(later)
    assert env.messenger.recipients == ["bob@example.com"]
    assert shown["stats"] == {**shown["stats"], "targeted": 2, "sent": 1, "suppressed": 1}


def test_tracking_needs_no_key_and_knows_no_campaign(cenv, check_error) -> None:
    tokens = Tokens(cenv.config.secret_key)
    # a validly signed open for a campaign that no longer exists: the pixel, nothing counted
    response = cenv.client.get(f"/t/o/{tokens.sign('open', ['cp404', 'l:ld1'])}")
    assert response.status_code == 200
    check_error(cenv.client.get(f"/t/c/{tokens.sign('click', ['cp404', 'l:ld1', 'abc'])}"), 404)


def test_an_unsubscribe_never_overwrites_a_complaint(sent) -> None:
    """The one precedence rule (people/suppressions.suppress): a complaint stays a complaint
    when the person later clicks the unsubscribe link; consent is still withdrawn."""
    from outreach.people.suppressions import suppress

    env, campaign_id, tokens = sent
    assert suppress(env.store, "ann@example.com", "complaint", {"reason": "complaint", "at": 1})
    response = env.client.post(f"/u/{tokens['ann@example.com']['unsubscribe']}",
                               data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert env.store.r.hget(env.store.keys.suppressed, "ann@example.com") == "complaint"
    assert env.lead_of("ann@example.com")["consent"] is False
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 1
