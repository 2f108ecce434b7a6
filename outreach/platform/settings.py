"""The effective configuration, as an admin may see it: every setting, secrets hidden."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from outreach.config import Config

# secret_key, smtp_password, dkim_private_key_file is a path (shown), mailgun_signing_key,
# postmark_webhook_user/password, a mailbox URL with a password (masked below), extra
_SECRET_NAME = re.compile(r"(secret|password|signing_key|webhook_user|token)|(_key$)|^extra$")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]+)@", re.I)


def _shown(name: str, value: Any) -> str:
    if _SECRET_NAME.search(name):
        return "(set, hidden)" if value else "(not set)"
    text = ", ".join(map(str, value)) if isinstance(value, tuple | list) else str(value)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def effective_settings(config: Config) -> list[dict[str, str]]:
    """``[{"name": "OUTREACH_…", "value": "…"}]`` in declaration order; secret settings show
    only whether they are set, and passwords inside URLs are masked."""
    return [{"name": "OUTREACH_" + f.name.upper(), "value": _shown(f.name, getattr(config, f.name))}
            for f in dataclasses.fields(config) if not f.name.startswith("_")]
