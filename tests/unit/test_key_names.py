"""The store owns every key name: no two names collide (two branches once gave a follow-up's
audience set and the cached audience count the same key, and the console answered 500)."""

from __future__ import annotations

import inspect

from outreach.store.keys import Keys

# names that are another name by design: a person's hash by ref is their lead's or contact's
ALIASES = {"person"}


def test_every_key_name_is_distinct() -> None:
    keys = Keys("t")
    seen: dict[str, str] = {}
    for name, member in inspect.getmembers(type(keys)):
        if name.startswith("_") or name in ALIASES:
            continue
        if isinstance(member, property):
            value = getattr(keys, name)
        elif callable(member):
            params = [p for p in inspect.signature(member).parameters if p != "self"]
            try:
                value = member(keys, *(f"{name}-{i}" for i in range(len(params))))
            except (ValueError, TypeError):  # takes a number or a parsed id
                value = member(keys, *(str(1_000_000 + i) for i in range(len(params))))
        else:
            continue
        if not isinstance(value, str) or not value.startswith("{t}"):
            continue
        # the same name from two builders (arguments are unique per builder, so a clash is
        # a fixed name or a pattern shared by two builders)
        shape = value
        for i in range(4):
            shape = shape.replace(f"{name}-{i}", "*")
        assert shape not in seen, f"{name} and {seen[shape]} both build {shape}"
        seen[shape] = name
    assert len(seen) > 100
