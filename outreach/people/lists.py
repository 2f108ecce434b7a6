"""Marketing lists: every asset has a lead list and a parallel contact list."""

from __future__ import annotations

import time
from typing import Any

from outreach.errors import Invalid, NotFound
from outreach.normalize import InvalidEmail, checked_email
from outreach.people.affiliation import account_view
from outreach.people.records import asset_slugs, contact_view, lead_view, load_contacts, load_leads
from outreach.people.scoring import decay_of
from outreach.people.search import fold
from outreach.people.segments import dirty
from outreach.platform import refs
from outreach.platform.paging import cursor_position, existing_hash, int_position, load_hashes, page, walk
from outreach.store import Store

MEMBER_TYPES = ("lead", "contact", "account")
ACCOUNT_CONTACTS = ("all", "primary")  # whom a campaign mails for each account of a list


def list_view(store: Store, list_id: str, meta: dict[str, str], size: int) -> dict[str, Any]:
    asset = {"kind": meta["kind"], "slug": meta["slug"]} if meta.get("slug") else None
    return {
        "id": list_id,
        "name": meta.get("name"),
        "member_type": meta.get("member_type"),
        "asset": asset,
        "parallel_list_id": meta.get("parallel"),
        "size": size,
        **({"account_contacts": meta.get("account_contacts") or "all"}
           if meta.get("member_type") == "account" else {}),
    }


def _load_lists(store: Store, ids: list[str]) -> list[dict[str, Any] | None]:
    pipe = store.r.pipeline(transaction=False)
    for list_id in ids:
        pipe.hgetall(store.keys.list(list_id))
        pipe.zcard(store.keys.list_members(list_id))
    rows = pipe.execute()
    out: list[dict[str, Any] | None] = []
    for i, list_id in enumerate(ids):
        meta, size = rows[2 * i], rows[2 * i + 1]
        out.append(list_view(store, list_id, meta, size) if meta else None)
    return out


def find_lists(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    return page(store, store.keys.lists, limit, cursor, lambda ids: _load_lists(store, ids))


def get_list(store: Store, list_id: str) -> dict[str, Any]:
    found = _load_lists(store, [list_id])[0]
    if found is None:
        raise NotFound(f"No list {list_id!r}.")
    return found


def create_list_pair(store: Store, name: str, member_type: str,
                     account_contacts: str | None = None) -> dict[str, Any]:
    """A manual list of ``member_type`` and its parallel list of the other type; an
    account list stands alone (a campaign mails its accounts' contacts: every consenting
    one, or only the primary contact, as ``account_contacts`` says)."""
    if member_type == "account":
        list_id, n = store.next_id("list", "ls")
        pipe = store.r.pipeline(transaction=True)
        pipe.hset(store.keys.list(list_id), mapping={
            "name": name, "member_type": "account", "account_contacts": account_contacts or "all",
            "created_at": str(int(time.time()))})
        pipe.zadd(store.keys.lists, {list_id: n})
        pipe.execute()
        return get_list(store, list_id)
    other = "contact" if member_type == "lead" else "lead"
    first, n1 = store.next_id("list", "ls")
    second, n2 = store.next_id("list", "ls")
    now = str(int(time.time()))
    keys = store.keys
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.list(first), mapping={"name": name, "member_type": member_type,
                                         "parallel": second, "created_at": now})
    pipe.hset(keys.list(second), mapping={"name": f"{name} ({other}s)", "member_type": other,
                                          "parallel": first, "created_at": now})
    pipe.zadd(keys.lists, {first: n1, second: n2})
    pipe.execute()
    return get_list(store, first)


def list_members(
    store: Store, list_id: str, *, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    meta = existing_hash(store, store.keys.list(list_id), "list", list_id)
    is_lead = meta["member_type"] == "lead"
    if meta["member_type"] == "account":
        def load_accounts(ids: list[str]) -> list[dict[str, Any] | None]:
            rows = load_hashes(store, store.keys.account, ids)
            return [dict(account_view(i, h), type="account") if h else None
                    for i, h in zip(ids, rows, strict=True)]

        return page(store, store.keys.list_members(list_id), limit, cursor, load_accounts)

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        rows = load_leads(store, ids) if is_lead else load_contacts(store, ids)
        view = lead_view if is_lead else contact_view
        slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
        decay = decay_of(store)
        return [
            dict(view(pid, h, slugs, decay), type=meta["member_type"]) if h else None
            for pid, h in zip(ids, rows, strict=True)
        ]

    return page(store, store.keys.list_members(list_id), limit, cursor, load)


def add_accounts(store: Store, list_id: str, account_ids: list[str], emails: list[str]
                 ) -> dict[str, Any]:
    """Add accounts to an account list: by id, or the account of each contact address."""
    keys = store.keys
    unknown: list[str] = []
    wanted: list[str] = []
    for account_id in account_ids:
        (wanted if store.r.exists(keys.account(account_id)) else unknown).append(account_id)
    for raw in emails:
        try:
            email = checked_email(raw)
        except InvalidEmail:
            unknown.append(raw)
            continue
        contact_id = store.r.hget(keys.contact_by_email, email)
        account_id = store.r.hget(keys.contact(contact_id), "account_id") if contact_id else None
        (wanted.append(account_id) if account_id else unknown.append(email))
    added = already = 0
    for account_id in dict.fromkeys(wanted):
        seq = store.r.hincrby(keys.sequences, "member", 1)
        if store.r.zadd(keys.list_members(list_id), {account_id: seq}, nx=True):
            added += 1
        else:
            already += 1
    return {"added": added, "already_members": already, "unknown": unknown}


def add_members(store: Store, list_id: str, emails: list[str],
                account_ids: list[str] | None = None) -> dict[str, Any]:
    """Add known people (of the list's member type) by address; accounts by id or by
    the address of one of their contacts."""
    keys = store.keys
    meta = existing_hash(store, keys.list(list_id), "list", list_id)
    if meta["member_type"] == "account":
        return add_accounts(store, list_id, account_ids or [], emails)
    if not emails:
        raise Invalid("Validation failed.", {"emails": ["Give at least one address."]})
    index = keys.lead_by_email if meta["member_type"] == "lead" else keys.contact_by_email
    bad = {}
    normal: list[str] = []
    for i, raw in enumerate(emails):
        try:
            normal.append(checked_email(raw))
        except InvalidEmail:
            bad[str(i)] = ["Not a valid email address."]
    if bad:
        raise Invalid("Validation failed.", {"emails": [f"Item {i}: not a valid email address."
                                                        for i in bad]})
    added, already, unknown = 0, 0, []
    kind = "lead" if meta["member_type"] == "lead" else "contact"
    person_ref = refs.lead_ref if kind == "lead" else refs.contact_ref
    joined: list[str] = []
    for start in range(0, len(normal), CHUNK):  # one script per chunk, not trips per person
        reply = store.run("add_members", keys=[keys.list_members(list_id), index],
                          args=[keys.tag, list_id, kind, *normal[start:start + CHUNK]])
        added += int(reply[0])
        already += int(reply[1])
        missing = int(reply[2])
        unknown += reply[3:3 + missing]
        joined += [person_ref(person_id) for person_id in reply[3 + missing:]]
    dirty.touch_many(store, joined, [f"list:{list_id}"])
    return {"added": added, "already_members": already, "unknown": unknown}


CHUNK = 500


def _remember_list(store: Store, person_key: str, list_id: str) -> None:
    """Keep the person's own list of lists (field ``lists``) in step with the list."""
    store.run("remember_list", keys=[person_key], args=[store.keys.tag, list_id])


def _pair_matches(pair: dict[str, Any], needle: str) -> bool:
    sides = [pair.get(side) for side in ("lead", "contact", "other")]
    names = [side["name"] for side in sides if side] + [
        (pair.get("asset") or {}).get("slug") or ""]
    return any(needle in fold(name or "") for name in names)


def find_list_pairs(store: Store, *, limit: int = 25, cursor: str | None = None,
                    newest_first: bool = False, q: str = "") -> dict[str, Any]:
    """Lists as parallel pairs ``{"lead": list, "contact": list|None, "asset"}``, one item per
    pair (keyed by its lead list; a list whose parallel is a lead list is shown with it).
    ``q``: only pairs whose list name or asset slug contains it (case- and accent-insensitive)."""
    needle = fold(q.strip())

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        lists = _load_lists(store, ids)
        parallel_ids = [found["parallel_list_id"] for found in lists
                        if found and found["member_type"] == "lead" and found["parallel_list_id"]]
        parallels = dict(zip(parallel_ids, _load_lists(store, parallel_ids), strict=True))
        out: list[dict[str, Any] | None] = []
        for found in lists:
            if found is None or (found["member_type"] == "contact" and found["parallel_list_id"]):
                out.append(None)
                continue
            if found["member_type"] == "lead":
                other = parallels.get(found["parallel_list_id"] or "")
                out.append({"lead": found, "contact": other, "asset": found["asset"]})
            elif found["member_type"] == "contact":  # a contact list without a parallel
                out.append({"lead": None, "contact": found, "asset": found["asset"]})
            else:  # an account list stands alone
                out.append({"lead": None, "contact": None, "other": found, "asset": found["asset"]})
            if needle and out[-1] is not None and not _pair_matches(out[-1], needle):
                out[-1] = None
        return out

    return page(store, store.keys.lists, limit, cursor, load, newest_first)


def find_list_member(store: Store, list_id: str, email: str) -> list[dict[str, Any]]:
    """The member of ``list_id`` with this address (zero or one), for the members search."""
    keys = store.keys
    meta = existing_hash(store, keys.list(list_id), "list", list_id)
    try:
        normal = checked_email(email)
    except InvalidEmail:
        return []
    if meta["member_type"] not in ("lead", "contact"):
        return []  # an account list's members have no address of their own
    is_lead = meta["member_type"] == "lead"
    person_id = store.r.hget(keys.lead_by_email if is_lead else keys.contact_by_email, normal)
    if not person_id or store.r.zscore(keys.list_members(list_id), person_id) is None:
        return []
    h = (load_leads if is_lead else load_contacts)(store, [person_id])[0]
    if not h:
        return []
    view = lead_view if is_lead else contact_view
    return [dict(view(person_id, h, asset_slugs(store, [h.get("regs")]), decay_of(store)),
                 type=meta["member_type"])]


def _member_views(store: Store, member_type: str, ids: list[str]) -> list[dict[str, Any]]:
    """The members ``ids`` of a list of ``member_type`` as ``list_members`` shows them."""
    if member_type == "account":
        rows = load_hashes(store, store.keys.account, ids)
        return [dict(account_view(i, h), type="account") for i, h in zip(ids, rows, strict=True) if h]
    is_lead = member_type == "lead"
    rows = load_leads(store, ids) if is_lead else load_contacts(store, ids)
    view = lead_view if is_lead else contact_view
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    decay = decay_of(store)
    return [dict(view(pid, h, slugs, decay), type=member_type)
            for pid, h in zip(ids, rows, strict=True) if h]


def search_list_members(
    store: Store, list_id: str, q: str, *, limit: int = 25, cursor: str | None = None,
    chunk: int = 500, max_scan: int = 5000,
) -> dict[str, Any]:
    """Members of ``list_id`` whose address starts with ``q`` (case-insensitive; an account
    list: the account's name or domain), in list order, paged.

    The member set holds person ids, not addresses, so neither ZSCAN's MATCH nor a lex
    range can find an address in it: the members are read in list order, ``chunk`` ids a
    round trip, each one's address with it, and one request reads at most ``max_scan`` of
    them. ``next_cursor`` continues after the last member read (a page with fewer than
    ``limit`` matches and a cursor means the search stopped there, not that nothing is
    left); ``scanned`` and ``total`` say how far it got. A full address is first looked up
    in the address index (one member, no walk)."""
    keys = store.keys
    meta = existing_hash(store, keys.list(list_id), "list", list_id)
    member_type = meta["member_type"]
    members = keys.list_members(list_id)
    total = int(store.r.zcard(members))
    needle = fold(q.strip())
    if "@" in needle and not cursor and member_type != "account":
        exact = find_list_member(store, list_id, needle)
        if exact:
            return {"items": exact, "next_cursor": None, "scanned": 0, "total": total}
    if member_type == "account":
        key_for, fields = keys.account, ("name", "domain")
    else:
        key_for, fields = (keys.lead if member_type == "lead" else keys.contact), ("email",)
    def step(position: str, size: int) -> tuple[list[tuple[str, str]], str | None, int]:
        rows = store.r.zrangebyscore(members, f"({int_position(position)}", "+inf", start=0,
                                     num=size, withscores=True)
        pipe = store.r.pipeline(transaction=False)
        for person_id, _ in rows:
            pipe.hmget(key_for(person_id), fields)
        matches = [(person_id, str(int(seq)))
                   for (person_id, seq), values in zip(rows, pipe.execute(), strict=True)
                   if any(value and fold(value).startswith(needle) for value in values)]
        following = str(int(rows[-1][1])) if rows and len(rows) == size else None
        return matches, following, len(rows)

    def any_left(position: str) -> bool:
        return bool(store.r.zrangebyscore(members, f"({int_position(position)}", "+inf", start=0, num=1))

    found = walk(step, limit=limit, cursor=cursor, size=chunk, scan_budget=max_scan,
                 any_left=any_left, build=lambda ids: _member_views(store, member_type, ids))
    at = int(cursor_position(found["next_cursor"])) if found["next_cursor"] else None
    scanned = total if at is None else int(store.r.zcount(members, "-inf", at))
    return {**found, "scanned": scanned, "total": total}


def remove_member(store: Store, list_id: str, ref: str) -> bool:
    """Take one person (``l:``/``c:`` ref) off a list; whether they were on it. (Their own
    ``lists`` field may still name it: readers treat it as a superset, as erasure does.)"""
    _, person_id = refs.parse(ref)
    pipe = store.r.pipeline(transaction=True)
    pipe.zrem(store.keys.list_members(list_id), person_id)
    dirty.mark(pipe, store, [ref])
    removed = bool(pipe.execute()[0])
    if removed:
        dirty.touch(store, ref, [f"list:{list_id}"])
    else:
        dirty.clear(store, [ref])
    return removed
