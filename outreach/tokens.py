"""Signed tokens for tracking and unsubscribe links: one itsdangerous salt per purpose.

Tokens are signed with the current secret and verified with it or any of the fallbacks
(``OUTREACH_SECRET_KEY_FALLBACKS``), so rotating the secret breaks no link already in an
inbox. (itsdangerous takes a list of keys, oldest first, and signs with the last.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

PURPOSES = ("open", "click", "unsubscribe")


class Tokens:
    def __init__(self, secret_key: str, fallbacks: Iterable[str] = ()) -> None:
        keys = [*(k for k in fallbacks if k != secret_key), secret_key]  # signs with the last
        self._signers = {
            purpose: URLSafeSerializer(keys, salt=f"outreach.{purpose}") for purpose in PURPOSES
        }
        # double opt-in confirmation links expire: a timed signer with its own salt
        self._timed = URLSafeTimedSerializer(keys, salt="outreach.consent-confirm")

    def sign_confirmation(self, payload: list[Any]) -> str:
        return self._timed.dumps(payload)

    def read_confirmation(self, token: str, max_age: float) -> tuple[list[Any] | None, str]:
        """``(payload, "ok")``, or ``(None, "expired"|"invalid")``."""
        try:
            payload = self._timed.loads(token, max_age=max_age)
        except SignatureExpired:
            return None, "expired"
        except BadSignature:
            return None, "invalid"
        return (payload, "ok") if isinstance(payload, list) else (None, "invalid")

    def sign(self, purpose: str, payload: list[Any]) -> str:
        return self._signers[purpose].dumps(payload)

    def read(self, purpose: str, token: str) -> list[Any] | None:
        """The payload, or ``None`` when the token was tampered with or is for another purpose."""
        try:
            payload = self._signers[purpose].loads(token)
        except BadSignature:
            return None
        return payload if isinstance(payload, list) else None
