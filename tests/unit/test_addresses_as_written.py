"""Mail goes to the address the person wrote: the spelling shown in ``To:`` belongs to the
address it spells, through an edit and through qualification."""

from __future__ import annotations


def test_an_edited_address_never_keeps_the_old_spelling(make_cenv) -> None:
    with make_cenv() as env:
        list_id = env.leads("Ann@Example.com")
        lead = env.lead_of("ann@example.com")
        edited = env.patch(f"/api/v1/leads/{lead['id']}", json={"email": "bob@example.com"})
        assert edited.status_code == 200, edited.get_json()
        assert "email_given" not in env.store.r.hgetall(env.store.keys.lead(lead["id"]))
        assert env.run(env.launched([list_id]))["stats"]["sent"] == 1
        (msg, _, rcpt) = env.messenger.messages[0]
        assert rcpt == "bob@example.com"
        assert msg["To"] == "bob@example.com"


def test_an_edit_keeps_the_new_address_as_written(make_cenv) -> None:
    with make_cenv() as env:
        list_id = env.leads("ann@example.com")
        lead = env.lead_of("ann@example.com")
        env.patch(f"/api/v1/leads/{lead['id']}", json={"email": "Stra\u00dfe@Example.com"})
        assert env.lead_of("stra\u00dfe@example.com")["id"] == lead["id"]
        env.run(env.launched([list_id]))
        (msg, _, rcpt) = env.messenger.messages[0]
        assert rcpt == "stra\u00dfe@example.com"
        assert msg["To"] == "Stra\u00dfe@Example.com"


def test_qualification_carries_the_spelling_to_the_contact(env) -> None:
    env.registered("Ann.Smith@Example.com", consent=True, company="Acme")
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    result = env.post(f"/api/v1/leads/{lead['id']}/qualify", json={})
    assert result.status_code == 200, result.get_json()
    contact_id = result.get_json()["contact_id"]
    contact = env.store.r.hgetall(env.store.keys.contact(contact_id))
    assert contact["email"] == "ann.smith@example.com"
    assert contact["email_given"] == "Ann.Smith@Example.com"


def test_straße_is_mailed_at_straße(make_cenv) -> None:
    with make_cenv() as env:
        list_id = env.leads("stra\u00dfe@example.com", "\ufb01nance@example.com")
        assert env.run(env.launched([list_id]))["stats"]["sent"] == 2
        assert sorted(env.messenger.recipients) == ["stra\u00dfe@example.com",
                                                    "\ufb01nance@example.com"]
