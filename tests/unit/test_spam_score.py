"""SpamAssassin (Debian's spamassassin, offline rules: ``spamassassin -t -L``) as a judge of
the built-in templates as a campaign sends them (DKIM-signed, VERP, tracked links)."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from outreach.mail.dkim import generate_key
from outreach.services.templates import builtin_templates

FORBIDDEN = ("MISSING_MID", "MISSING_DATE", "MPART_ALT_DIFF", "HTML_IMAGE_ONLY", "INVALID_MSGID",
             "MISSING_HEADERS", "MIME_HTML_ONLY", "EMPTY_MESSAGE")
POSTAL = "Example GmbH, Hauptstraße 1, 10115 Berlin, Germany"

pytestmark = pytest.mark.skipif(shutil.which("spamassassin") is None,
                                reason="Debian package spamassassin is not installed")


def score(raw: bytes, home: Path) -> tuple[float, list[str]]:
    done = subprocess.run(["spamassassin", "-t", "-L"], input=raw, capture_output=True,
                          timeout=120, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    out = done.stdout.decode("utf-8", "replace")
    match = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", out)
    assert match, out[-2000:] + done.stderr.decode(errors="replace")
    details = out[match.end():]
    rules = re.findall(r"^\s*-?[\d.]+\s+([A-Z][A-Z0-9_]+)\s", details, re.M)
    return float(match.group(1)), rules


def _sent(make_cenv: Any, tmp_path: Path, template: dict, track_opens: bool) -> bytes:
    key = tmp_path / "k.pem"
    key.write_bytes(generate_key("rsa"))
    with make_cenv(dkim_domain="outreach.example", dkim_selector="s1", dkim_private_key_file=str(key),
                   track_opens=track_opens,
                   bounce_domain="bounces.outreach.example", postal_address=POSTAL) as env:
        list_id = env.leads("ada.lovelace@example.org", first_name="Ada", company="Analytical Engines")
        template_id = env.template(subject=template["subject"], html=template["html"],
                                   text=template["text"], name=template["name"])
        campaign_id = env.launched([list_id], template_id)
        assert env.run(campaign_id)["stats"]["sent"] == 1
        (raw,) = env.messenger.raw
    return raw


@pytest.mark.parametrize("template", builtin_templates(), ids=lambda t: t["name"])
def test_builtin_templates_pass_spamassassin(make_cenv: Any, tmp_path: Path, template: dict) -> None:
    raw = _sent(make_cenv, tmp_path, template, track_opens=False)
    msg = email.message_from_bytes(raw)
    assert msg["Date"] and msg["Message-ID"] and msg["List-Id"] and msg["DKIM-Signature"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
             if not p.is_multipart()}
    assert POSTAL in parts["text/plain"] and POSTAL in parts["text/html"]
    points, rules = score(raw, tmp_path)
    print(f"SpamAssassin {template['name']}: {points} points, rules {rules}")
    assert points < 1.0, rules
    assert not [r for r in rules if r.startswith(FORBIDDEN)], rules


def test_the_open_pixel_is_what_spamassassin_punishes(make_cenv: Any, tmp_path: Path) -> None:
    """With OUTREACH_TRACK_OPENS on, the 1x1 pixel is an <img> in a short HTML part: one of
    HTML_IMAGE_ONLY_04..32 fires (>= 1.0 point each in the offline score set)."""
    raw = _sent(make_cenv, tmp_path, builtin_templates()[0], track_opens=True)
    assert b"/t/o/" in raw
    points, rules = score(raw, tmp_path)
    print(f"SpamAssassin with the open pixel: {points} points, rules {rules}")
    assert [r for r in rules if r.startswith("HTML_IMAGE_ONLY")]
