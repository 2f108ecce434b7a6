"""The console: server-rendered pages for marketers and sales under ``/console``.

Views are thin: parse the form or query, call one service, render a template from
``templates/console/``. Sessions (a signed cookie, path ``/console``), Flask-Login,
the CSRF check and the security headers are all scoped to this blueprint, so the
public intake path never opens a session or runs console code.
"""

from __future__ import annotations

from flask import Flask, redirect


def register_console(app: Flask) -> None:
    from outreach.console import auth, forms, marketing, people, sales, settings, views
    from outreach.console.base import bp

    auth.init_app(app)
    for module in (views, marketing, people, settings, sales, forms):  # routes are added on import
        assert module.bp is bp
    app.register_blueprint(bp)
    # a newcomer opening the service in a browser lands on the console (not a JSON 404)
    app.add_url_rule("/", "root", lambda: redirect("/console/"))
