"""Which account a contact works for, as the indexes keep it: the account-to-contacts
index (account lists mail an account's contacts, or its primary contact) and the account's
shape as people-side pages show it. People, lists and campaigns read and keep it; sales
manages the accounts themselves."""

from __future__ import annotations

from typing import Any

from outreach.store import Store
from outreach.vocabulary import iso


def account_view(account_id: str, h: dict[str, str]) -> dict[str, Any]:
    return {"id": account_id, "name": h.get("name"), "domain": h.get("domain"),
            "owner": h.get("owner") or None,
            "primary_contact_id": h.get("primary_contact_id") or None,
            "created_at": iso(h.get("created_at"))}


def link_contact(store: Store, contact_id: str, account_id: str, previous: str | None = None
                 ) -> None:
    """Keep the account-to-contacts index (account lists) in step with a contact's
    ``account_id``; the first contact of an account is its primary contact."""
    keys = store.keys
    seq = store.r.zscore(keys.contacts, contact_id) or 0
    pipe = store.r.pipeline(transaction=True)
    if previous:
        pipe.zrem(keys.account_contacts(previous), contact_id)
    pipe.zadd(keys.account_contacts(account_id), {contact_id: seq})
    pipe.hsetnx(keys.account(account_id), "primary_contact_id", contact_id)
    pipe.execute()


def unlink_contact(store: Store, contact_id: str, account_id: str) -> None:
    """The contact leaves the account's index; when it was the primary contact, the next
    contact (in the order they came) becomes primary, or the account has none."""
    keys = store.keys
    store.r.zrem(keys.account_contacts(account_id), contact_id)
    if store.r.hget(keys.account(account_id), "primary_contact_id") != contact_id:
        return
    successor = store.r.zrange(keys.account_contacts(account_id), 0, 0)
    if successor:
        store.r.hset(keys.account(account_id), "primary_contact_id", successor[0])
    else:
        store.r.hdel(keys.account(account_id), "primary_contact_id")


def contacts_of_accounts(store: Store, list_id: str, account_ids: list[str]) -> list[str]:
    """The contacts an account list's campaign mails for ``account_ids``: every contact of
    each account, or only its primary contact (the list's ``account_contacts``); consent and
    suppression are checked by the campaign like for any contact, and the campaign's ledger
    keeps each address once across all its lists."""
    keys = store.keys
    primary_only = store.r.hget(keys.list(list_id), "account_contacts") == "primary"
    pipe = store.r.pipeline(transaction=False)
    for account_id in account_ids:
        if primary_only:
            pipe.hget(keys.account(account_id), "primary_contact_id")
        else:
            pipe.zrange(keys.account_contacts(account_id), 0, -1)
    out: list[str] = []
    for found in pipe.execute():
        if isinstance(found, list):
            out.extend(found)
        elif found:
            out.append(found)
    return list(dict.fromkeys(out))
