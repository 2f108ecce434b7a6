"""What every marshmallow loader shares, below the domains and ``schemas/`` alike: unknown
fields ignored, lone surrogates refused, addresses checked and normalised, the asset slug
rule's message. People's own loaders (``people.registration``) and the HTTP shapes
(``schemas/``) both build on these, so a rule for input holds in one place."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

from outreach.normalize import InvalidEmail, checked_email

SURROGATE = re.compile("[\ud800-\udfff]")
ASSET_ERROR = "Must match [a-z0-9-]{{1,80}}."


class InputSchema(Schema):
    """Unknown fields are ignored (API.md)."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _reject_lone_surrogates(self, data: Any, **_kwargs: Any) -> Any:
        """JSON may carry ``"\\ud800"``: such text can be neither stored nor encoded."""
        if not isinstance(data, dict):
            return data
        bad = {}
        for name, value in data.items():
            if name not in self.load_fields:
                continue
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and SURROGATE.search(v) for v in values):
                bad[name] = ["Not valid Unicode text."]
        if bad:
            raise ValidationError(bad)
        return data


class Email(fields.String):
    """A syntactically valid address, normalised (trimmed, NFC, local part lower-cased)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return checked_email(text)
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from exc


def no_trailing_newline(value: str) -> None:
    """With the slug ``Regexp``: ``$`` also matches before a final newline, and "guide\\n"
    must not pass the slug rule."""
    if value.endswith("\n"):
        raise ValidationError(ASSET_ERROR.format())
