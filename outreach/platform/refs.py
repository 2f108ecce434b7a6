"""The one way to name a person: a *ref*, ``l:<lead id>`` or ``c:<contact id>``.

Refs name recipients in campaign ledgers, events, consent evidence and activities; the
person's hash is ``store.keys.person(ref)``.
"""

from __future__ import annotations

from outreach.store import to_base36

LEAD = "l"
CONTACT = "c"
TYPES = {LEAD: "lead", CONTACT: "contact"}
ID_PREFIXES = {LEAD: "ld", CONTACT: "ct"}  # ids are prefix + base36(n) (``new_id``, lua)
_DIGITS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


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


def person_number(ref: str) -> tuple[str, int] | None:
    """``(kind, n)`` of a ref whose id is its kind's prefix and base36(n) as ids are made
    (``ld1z`` -> ``("l", 71)``); None for any other ref (such a person has no number, so
    cannot be a segment member)."""
    kind, person_id = parse(ref)
    if not kind or not person_id.startswith(ID_PREFIXES[kind]):
        return None
    digits = person_id[2:]
    if not digits or len(digits) > 12 or not _DIGITS.issuperset(digits) or (
            digits[0] == "0" and digits != "0"):
        return None
    return kind, int(digits, 36)


def ref_of_number(kind: str, n: int) -> str:
    """The ref of person number ``n`` of ``kind`` (the inverse of ``person_number``)."""
    return f"{kind}:{ID_PREFIXES[kind]}{to_base36(n)}"
