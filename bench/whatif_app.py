"""What-if variant of outreach's intake for ``bench/intake.py --what-if`` (profiling aid).

Not product code: it builds the real ``outreach.create_app()`` and swaps marshmallow's
``RegistrationIn.load`` on the request path for a hand-written loader with the same rules
(addresses still checked by the product's ``checked_email``), to measure what the fix
suggested in BENCHMARKS.md would buy.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from marshmallow import ValidationError

from outreach.normalize import InvalidEmail, checked_email
from outreach.schemas.intake import ASSET_PATTERN, KINDS, PROFILE_FIELDS

_LIMITS = {name: 40 if name in ("phone", "mobile_phone", "postal_code") else 200
           for name in PROFILE_FIELDS}
_ASSET = re.compile(ASSET_PATTERN)
_TRUE = {"true", "True", "TRUE", "1", "yes", "on", "y", "t", 1}
_FALSE = {"false", "False", "FALSE", "0", "no", "off", "n", "f", 0}


class Loader:
    """RegistrationIn's rules, written out by hand (unknown fields are ignored)."""

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        out: dict[str, Any] = {"consent": False}
        kind = data.get("kind")
        if kind not in KINDS:
            errors["kind"] = ["Must be one of: " + ", ".join(KINDS) + "."]
        out["kind"] = kind
        asset = data.get("asset")
        if not isinstance(asset, str) or not _ASSET.match(asset):
            errors["asset"] = ["Must match [a-z0-9-]{1,80}."]
        out["asset"] = asset
        email = data.get("email")
        if not isinstance(email, str):
            errors["email"] = ["Missing data for required field."]
        else:
            try:
                out["email"] = checked_email(email)
            except InvalidEmail as exc:
                errors["email"] = [str(exc)]
        for name, limit in _LIMITS.items():
            value = data.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > limit:
                errors[name] = [f"Not a valid string of at most {limit} characters."]
            out[name] = value
        if "consent" in data:
            consent = data["consent"]
            if consent in _TRUE:
                out["consent"] = True
            elif consent not in _FALSE:
                errors["consent"] = ["Not a valid boolean."]
        for name in ("website", "redirect_to"):
            if isinstance(data.get(name), str):
                out[name] = data[name]
        if errors:
            raise ValidationError(errors)
        return out


def create_app() -> Flask:
    from outreach import create_app as outreach_app
    from outreach.api import intake

    intake._registration_in = Loader()
    return outreach_app()
