"""HTTP handlers: parse with a schema, call one service, dump with a schema."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from outreach.api import campaigns, crm, intake, lists, ops, people, sales, suppressions, tracking

    for module in (intake, people, lists, campaigns, tracking, crm, ops, suppressions, sales):
        app.register_blueprint(module.bp)

    from outreach.api import assets as assets_api

    app.register_blueprint(assets_api.bp)
    from outreach.api import provider_webhooks  # deliverability: public, verified

    app.register_blueprint(provider_webhooks.bp)
    assets_api.init_app(app)
    from outreach.public import register_public

    register_public(app)

    from outreach.console import register_console

    register_console(app)
