"""Accounts: reading, listing and editing them (name, primary contact, owner). Which
contacts an account has is ``people.affiliation``'s index."""

from __future__ import annotations

from typing import Any

from outreach.errors import Invalid
from outreach.people.affiliation import account_view
from outreach.people.segments import catalog
from outreach.platform.paging import existing_hash, page_of_hashes
from outreach.sales.owners import set_owner
from outreach.store import Store


def get_account(store: Store, account_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.account(account_id), "account", account_id)
    return account_view(account_id, h)


def find_accounts(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    return page_of_hashes(store, store.keys.accounts, store.keys.account, account_view, limit, cursor)


def update_account(store: Store, account_id: str, changes: dict[str, Any], by: str) -> dict[str, Any]:
    key = store.keys.account(account_id)
    existing_hash(store, key, "account", account_id)
    primary = changes.get("primary_contact_id")
    if primary and store.r.zscore(store.keys.account_contacts(account_id), primary) is None:
        raise Invalid("Validation failed.", {"primary_contact_id": [
            "Not a contact of this account."]})
    if primary:
        store.r.hset(key, "primary_contact_id", primary)
    if changes.get("name"):
        store.r.hset(key, "name", changes["name"])
        catalog.rebuild_readers(store, "account")  # its contacts, and the leads matched to it
    if changes.get("owner"):
        set_owner(store, "account", account_id, changes["owner"], by)
    return get_account(store, account_id)
