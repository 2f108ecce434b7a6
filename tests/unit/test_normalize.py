"""Normalisation: when two inputs are the same address (and so the same lead)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from outreach.normalize import (
    InvalidEmail,
    checked_email,
    email_domain,
    email_hash,
    normalise_company,
    normalise_email,
)


def _case_stable(c: str) -> bool:
    # Characters whose upper form lower-cases back to their lower form. Many do not
    # (dotless ı upper-cases to I, which lowers to i; ß upper-cases to SS, final ς to Σ):
    # those upper-case spellings are another address (str.lower, never case folding).
    # Sigma lowers by context (final ς), so its upper case is no variant either.
    return c not in "\u03a3\u03c3\u03c2" and c.upper().lower() == c.lower() == c.lower().lower()


_letters = st.characters(
    categories=["Lu", "Ll"], max_codepoint=0x24F  # Latin, with precomposed accents
).filter(_case_stable)
_extra = st.sampled_from(["é", "ñ", "Å", "ü", "ß", "ö", "ç", "ǰ", "Ǆ", "ǅ", "ǆ", "Ω", "σ", "ς"])
_atom = st.text(
    st.one_of(_letters, _extra, st.sampled_from("0123456789_-+")), min_size=1, max_size=10
)
local_parts = st.lists(_atom, min_size=1, max_size=3).map(".".join)
domains = st.lists(
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"), min_size=1, max_size=10),
    min_size=1,
    max_size=3,
).map(lambda labels: ".".join([*labels, "com"]))
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


def _valid(address: str) -> bool:
    try:
        checked_email(address)
    except InvalidEmail:
        return False
    return True


def _variant(address: str, data: st.DataObject) -> str:
    """Any case, surrounding whitespace and canonical (NFC/NFD) variant of ``address``."""
    cased = "".join(
        data.draw(st.sampled_from([c, c.upper(), c.lower()])) if _case_stable(c) else c
        for c in address
    )
    form = data.draw(st.sampled_from(["NFC", "NFD", None]))
    if form:
        cased = unicodedata.normalize(form, cased)
    pad = st.text(st.sampled_from(" \t\r\n\u00a0\u3000"), max_size=3)
    return data.draw(pad) + cased + data.draw(pad)


@settings(max_examples=150, deadline=None)
@given(addresses, st.data())
def test_variants_normalise_to_the_same_address(address: str, data: st.DataObject) -> None:
    variant = _variant(address, data)
    assert normalise_email(variant) == normalise_email(address)
    if _valid(address):
        assert checked_email(variant) == checked_email(address)


@settings(max_examples=300, deadline=None)
@given(st.one_of(addresses, st.text(max_size=30)))
def test_normal_form_is_trimmed_nfc_lowered_and_idempotent(raw: str) -> None:
    email = normalise_email(raw)
    assert email == email.strip()
    assert unicodedata.is_normalized("NFC", email)
    assert normalise_email(email) == email


@settings(max_examples=200, deadline=None)
@given(addresses)
def test_checked_email_is_idempotent(address: str) -> None:
    assume(_valid(address))
    once = checked_email(address)
    assert checked_email(once) == once
    assert email_hash(address) == email_hash(once)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("  Ann.Smith@Example.COM ", "ann.smith@example.com"),
        ("ANN@EXAMPLE.COM", "ann@example.com"),
        ("Jos\u00e9@example.com", "jose\u0301@EXAMPLE.com"),  # NFC vs NFD
    ],
)
def test_same_address(a: str, b: str) -> None:
    assert checked_email(a) == checked_email(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ann.smith@example.com", "annsmith@example.com"),  # dots are kept
        ("ann+news@example.com", "ann@example.com"),  # +tags are kept
        ("ann+a@example.com", "ann+b@example.com"),
        ("ann@example.com", "ann@example.org"),
        ("strasse@example.com", "stra\u00dfe@example.com"),  # never case-folded
        ("finance@example.com", "\ufb01nance@example.com"),
    ],
)
def test_different_addresses_stay_different(a: str, b: str) -> None:
    assert checked_email(a) != checked_email(b)


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "plain", "@example.com", "ann@", "ann@@example.com", "ann example@x.com",
     "a" * 250 + "@example.com", "ann@exa mple.com", "ann\x00@example.com", "ann@example..com"],
)
def test_invalid_addresses_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        checked_email(raw)


def test_domain_and_company_keys() -> None:
    assert email_domain("ann@sub.example.com") == "sub.example.com"
    assert normalise_company("ACME, Inc.") == normalise_company("acme") == "acme"
    assert normalise_company("Acme Widgets GmbH") == "acme widgets"


# --- through intake and ingest: the same person is the same lead ----------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses, st.data())
def test_variants_become_one_lead(make_env, address: str, data: st.DataObject) -> None:
    assume(_valid(address))
    variants = [address] + [_variant(address, data) for _ in range(data.draw(st.integers(1, 3)))]
    with make_env() as env:
        people = set()
        for i, variant in enumerate(variants):
            response = env.register(variant, asset=f"asset-{i % 2}")
            assert response.status_code == 202, response.get_json()
        env.drain()
        leads = env.get("/api/v1/leads").get_json()["items"]
        assert len(leads) == 1
        assert leads[0]["email"] == checked_email(address)
        assert len(leads[0]["registrations"]) == len(variants)
        people.add(leads[0]["id"])
        found = env.get("/api/v1/leads", query_string={"email": variants[-1]}).get_json()
        assert [lead["id"] for lead in found["items"]] == list(people)


def test_dots_and_tags_are_distinct_leads(env) -> None:
    for address in ("ann.smith@example.com", "annsmith@example.com", "ann.smith+x@example.com",
                    "ANN.SMITH@example.com"):
        assert env.register(address).status_code == 202
    env.drain()
    emails = sorted(lead["email"] for lead in env.get("/api/v1/leads").get_json()["items"])
    assert emails == ["ann.smith+x@example.com", "ann.smith@example.com", "annsmith@example.com"]


# ---------------------------------------------------------------- the fast path
from email_validator import validate_email  # noqa: E402

from outreach.normalize import _plainly_valid  # noqa: E402

_atom = st.text(alphabet="abcz09_+-.", min_size=1, max_size=70)
_label = st.text(alphabet="abz09-", min_size=1, max_size=66)
_tld = st.sampled_from(["com", "io", "co", "test", "local", "x", "c1", "org", "localhost", "onion",
                        "museum", "xn--p1ai", "arpa"])


@given(local=_atom, labels=st.lists(_label, min_size=1, max_size=4), tld=_tld)
def test_fast_path_accepts_only_what_email_validator_accepts_unchanged(local, labels, tld):
    email = f"{local}@{'.'.join(labels)}.{tld}"
    if _plainly_valid(email):
        assert validate_email(email, check_deliverability=False).normalized == email


@given(st.text(max_size=80))
def test_fast_path_never_accepts_what_email_validator_rejects(text):
    if _plainly_valid(text):
        assert validate_email(text, check_deliverability=False).normalized == text


def test_fast_path_covers_the_common_case():
    for email in ("ann@example.com", "first.last+tag@mail.example.co.uk", "a_b-c@x-y.io"):
        assert _plainly_valid(email)
    for email in ("a@b.test", "a@xn--bcher-kva.ch", "a..b@c.com", "a@-b.com", "a@b.c1"):
        assert not _plainly_valid(email)


# ------------------------------------------- the local part is kept as written, lowered
_any_local = st.text(
    st.characters(categories=["Lu", "Ll", "Lt", "Lo", "Nd", "Mn"], exclude_characters="@"),
    min_size=1, max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(_any_local)
def test_local_part_is_lowered_never_case_folded(local: str) -> None:
    email = normalise_email(f"{local}@example.com")
    kept = email.rpartition("@")[0]
    assert kept == unicodedata.normalize("NFC", unicodedata.normalize("NFC", local).lower())
    assert normalise_email(email) == email


# letters that case folding changes although they are already lower case
_folds_away = st.sampled_from(["\u00df", "\ufb01", "\ufb02", "\ufb00", "\u0149", "\u01f0",
                               "\u0390", "\u1e9e", "\u03c2", "\u0587", "\ufb06", "\u1f80"])


@settings(max_examples=300, deadline=None)
@given(_any_local, _folds_away, _any_local)
def test_lowered_local_parts_that_fold_alike_stay_apart(head: str, odd: str, tail: str) -> None:
    local = head + odd + tail
    lowered = unicodedata.normalize("NFC", local.lower())
    folded = unicodedata.normalize("NFC", local.casefold())
    # (Cherokee folds to upper case, which lowers back: those are one address)
    assume(unicodedata.normalize("NFC", folded.lower()) != lowered)
    assert normalise_email(f"{lowered}@example.com") != normalise_email(f"{folded}@example.com")


@pytest.mark.parametrize("local", ["stra\u00dfe", "\ufb01nance", "\u03c3\u03bf\u03c6\u03b9\u03b1\u03c2"])
def test_the_written_local_part_is_the_address(local: str) -> None:
    assert checked_email(f" {local}@Example.com ") == f"{local}@example.com"


def test_upper_case_lowers_without_folding() -> None:
    assert checked_email("STRASSE@example.com") == "strasse@example.com"
    assert checked_email("Stra\u00dfe@example.com") == "stra\u00dfe@example.com"
