"""Proposed updates: what the public door brought for a record sales owns.

A registration without an API key never changes a contact's fields nor a qualified lead's
(``ingest.lua``): the values it brought that differ are kept on the record's timeline as a
``proposed_update`` (its audit list). Accepting one applies those values, with the audit
trail (who accepted it, each field's old and new value), once.
"""

from __future__ import annotations

import time
from typing import Any

from outreach.errors import Conflict, NotFound
from outreach.sales.owners import audit, audit_entries, record_key, require_record
from outreach.store import Store
from outreach.vocabulary import PROFILE_FIELDS

# what a proposal may set: the profile, and who referred the person
_PROPOSABLE = frozenset((*PROFILE_FIELDS, "referred_by"))


def accepted_ids(entries: list[dict[str, Any]]) -> set[str]:
    """The ids of the proposals these audit entries say were accepted."""
    return {str(e.get("id")) for e in entries if e.get("type") == "proposed_update_accepted"}


def accept_proposed_update(store: Store, kind: str, record_id: str, proposal_id: str,
                           by: str) -> dict[str, Any]:
    """Apply the proposed update ``proposal_id`` of a lead or contact; returns the changes
    made (``{field: {"from", "to"}}``). ``NotFound`` when there is no such proposal,
    ``Conflict`` when it was accepted before."""
    if kind not in ("lead", "contact"):
        raise NotFound("No such proposed update.")
    ref = f"{kind}:{record_id}"
    current = require_record(store, kind, record_id)
    entries = audit_entries(store, ref)
    proposal = next((e for e in entries if e.get("type") == "proposed_update"
                     and str(e.get("id")) == proposal_id), None)
    if proposal is None or not isinstance(proposal.get("fields"), dict):
        raise NotFound("No such proposed update.")
    if proposal_id in accepted_ids(entries):
        raise Conflict("This proposed update was accepted already.")
    changes = {name: {"from": current.get(name), "to": value}
               for name, value in proposal["fields"].items()
               if name in _PROPOSABLE and isinstance(value, str) and value
               and current.get(name) != value}
    pipe = store.r.pipeline(transaction=True)
    if changes:
        pipe.hset(record_key(store, kind, record_id), mapping={
            **{name: change["to"] for name, change in changes.items()},
            "updated_at": str(int(time.time()))})
    audit(pipe, store, ref, "proposed_update_accepted", by, id=proposal_id, changes=changes)
    pipe.execute()
    return changes
