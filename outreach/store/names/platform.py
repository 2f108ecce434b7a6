"""Key names: aPI keys, console users and the sign-in throttle."""

from __future__ import annotations

from outreach.store.names.base import KeyBase


class PlatformKeys(KeyBase):
    # auth
    @property
    def api_keys(self) -> str:
        return self._k("apikeys")

    @property
    def api_keys_used(self) -> str:
        """digest -> when the key was last used (unix seconds, written at most once a minute)"""
        return self._k("apikeys", "used")

    def api_key_touched(self, digest: str) -> str:
        """set for a minute after a key's ``last_used_at`` was written (the write guard)"""
        return self._k("apikeys", "touched", digest[:16])

    # console users and sign-in throttle
    def user(self, email: str) -> str:
        return self._k("user", email)

    @property
    def users(self) -> str:
        return self._k("users")

    def login_failures(self, email: str, client: str) -> str:
        return self._k("loginfail", email, client)

    def login_client_failures(self, client: str) -> str:
        """failed sign-ins from one client address (an IPv6 /64), whatever the account"""
        return self._k("loginfail-client", client)

    def login_account_failures(self, email: str) -> str:
        """failed sign-ins of one account, from every client (slows, never locks)"""
        return self._k("loginfail-account", email)

    def login_account_pace(self, email: str) -> str:
        """set while the next attempt for a much-attacked account must wait"""
        return self._k("loginpace", email)
