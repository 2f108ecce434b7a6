"""The one way to name a person: a *ref*, ``l:<lead id>`` or ``c:<contact id>``.

Refs name recipients in campaign ledgers, events, consent evidence and activities; the
person's hash is ``store.keys.person(ref)``.
"""

from __future__ import annotations

LEAD = "l"
CONTACT = "c"
TYPES = {LEAD: "lead", CONTACT: "contact"}


def lead_ref(lead_id: str) -> str:
    return f"{LEAD}:{lead_id}"


def contact_ref(contact_id: str) -> str:
    return f"{CONTACT}:{contact_id}"


def parse(ref: str) -> tuple[str, str]:
    """``(kind, id)`` of a ref: kind ``"l"`` or ``"c"``; ``("", "")`` for anything else."""
    kind, _, person_id = ref.partition(":")
    if kind not in TYPES or not person_id:
        return "", ""
    return kind, person_id


def lead_id_of(ref: str) -> str:
    """The lead id a ref names, or ``""`` when it names a contact (or nothing)."""
    kind, person_id = parse(ref)
    return person_id if kind == LEAD else ""
