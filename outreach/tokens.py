"""Signed tokens for tracking and unsubscribe links: one itsdangerous salt per purpose."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

PURPOSES = ("open", "click", "unsubscribe")


class Tokens:
    def __init__(self, secret_key: str) -> None:
        self._signers = {
            purpose: URLSafeSerializer(secret_key, salt=f"outreach.{purpose}") for purpose in PURPOSES
        }

    def sign(self, purpose: str, payload: list[Any]) -> str:
        return self._signers[purpose].dumps(payload)

    def read(self, purpose: str, token: str) -> list[Any] | None:
        """The payload, or ``None`` when the token was tampered with or is for another purpose."""
        try:
            payload = self._signers[purpose].loads(token)
        except BadSignature:
            return None
        return payload if isinstance(payload, list) else None
