"""SpamAssassin (Debian's spamassassin, offline rules: ``spamassassin -t -L``) as a judge of
the built-in templates as a campaign sends them with the default settings (DKIM-signed, VERP,
tracked links, the open pixel)."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from outreach.campaigns.templates import builtin_templates
from outreach.mail.dkim import generate_key
from outreach.mail.rendering import compile_template

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


def _sent(make_cenv: Any, tmp_path: Path, template: dict, **settings: Any) -> bytes:
    key = tmp_path / "k.pem"
    key.write_bytes(generate_key("rsa"))
    with make_cenv(dkim_domain="outreach.example", dkim_selector="s1", dkim_private_key_file=str(key),
                   bounce_domain="bounces.outreach.example", postal_address=POSTAL,
                   **settings) as env:
        list_id = env.leads("ada.lovelace@example.org", first_name="Ada", company="Analytical Engines")
        template_id = env.template(subject=template["subject"], html=template["html"],
                                   text=template["text"], name=template["name"])
        campaign_id = env.launched([list_id], template_id)
        assert env.run(campaign_id)["stats"]["sent"] == 1
        (raw,) = env.messenger.raw
    return raw


@pytest.mark.parametrize("template", builtin_templates(), ids=lambda t: t["name"])
def test_builtin_templates_pass_spamassassin(make_cenv: Any, tmp_path: Path, template: dict) -> None:
    """The default settings: opens tracked, so the 1x1 pixel is in the HTML."""
    raw = _sent(make_cenv, tmp_path, template)
    assert b"/t/o/" in raw  # the open pixel is there
    msg = email.message_from_bytes(raw)
    assert msg["Date"] and msg["Message-ID"] and msg["List-Id"] and msg["DKIM-Signature"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
             if not p.is_multipart()}
    assert POSTAL in parts["text/plain"] and POSTAL in parts["text/html"]
    points, rules = score(raw, tmp_path)
    print(f"SpamAssassin {template['name']}: {points} points, rules {rules}")
    assert points < 1.0, rules
    assert not [r for r in rules if r.startswith(FORBIDDEN)], rules


@pytest.mark.parametrize("template", builtin_templates(), ids=lambda t: t["name"])
def test_without_the_open_pixel_too(make_cenv: Any, tmp_path: Path, template: dict) -> None:
    raw = _sent(make_cenv, tmp_path, template, track_opens=False)
    assert b"/t/o/" not in raw
    points, rules = score(raw, tmp_path)
    print(f"SpamAssassin {template['name']} without the pixel: {points} points, rules {rules}")
    assert points < 1.0, rules
    assert not [r for r in rules if r.startswith(FORBIDDEN)], rules


@pytest.mark.parametrize("template", builtin_templates(), ids=lambda t: t["name"])
def test_builtin_html_is_long_enough_for_an_image(template: dict) -> None:
    """SpamAssassin's HTML_IMAGE_ONLY_04..32 fire for an HTML part with an <img> (the open
    pixel) and at most 3,200 bytes of HTML: the built-in templates stay above that even for
    a person with no name or company and a campaign with no asset (the shortest rendering)."""
    compiled = compile_template(template["subject"], template["html"], template["text"],
                                max_source=1 << 20, max_output=1 << 20)
    _, html, _ = compiled.render({"unsubscribe_url": "https://x.example/u/t", "asset": None,
                                  "email": "a@b.example",
                                  "campaign": {"name": "Q"}, "postal_address": ""})
    assert len(html.encode()) > 3200
