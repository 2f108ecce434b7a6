"""What every key-name mixin builds on: the installation's hash tag."""

from __future__ import annotations


class KeyBase:
    tag: str

    def _k(self, *parts: str) -> str:
        return ":".join((self.tag, *parts))
