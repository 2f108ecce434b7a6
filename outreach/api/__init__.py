"""HTTP handlers: parse with a schema, call one service, dump with a schema."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from outreach.api import intake, lists, ops, people

    for module in (intake, people, lists, ops):
        app.register_blueprint(module.bp)
    try:
        from outreach.api import campaigns, conversion, tracking
    except ImportError:  # pragma: no cover - while those areas are being built
        return
    for module in (campaigns, tracking, conversion):
        app.register_blueprint(module.bp)
