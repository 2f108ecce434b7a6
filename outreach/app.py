"""The application factory and all wiring: settings, store, Celery, messenger, every blueprint
and extension. Nothing below this module registers itself with the app."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect
from flask.sessions import NullSession, SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from outreach.config import Config, ConfigError

log = logging.getLogger(__name__)


class NoSessions(SessionInterface):
    """The API authenticates every request by bearer key; it keeps no session cookie."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None

    def make_null_session(self, app: Flask) -> Any:
        return NullSession()

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """Application factory. Without ``config`` everything comes from ``OUTREACH_*``.

    Raises ``ConfigError`` (one line naming the setting) for a malformed setting or, outside
    ``outreach dev``, a forgeable secret key (``outreach/startup.py``).
    """
    from outreach.startup import for_gunicorn

    try:
        return _create_app(config)
    except ConfigError as exc:
        raise for_gunicorn(exc) from None


def _create_app(config: Config | dict[str, Any] | None) -> Flask:
    from outreach import store as store_module
    from outreach.mail.smtp.messenger import SmtpMessenger
    from outreach.people.assets import RulesCache
    from outreach.people.intake import IngestKicker
    from outreach.web.api.cors import register_cors
    from outreach.web.common import register_error_handlers
    from tasks import celery_init_app
    from tasks.campaigns import CeleryJobs
    from tasks.consent import CeleryConsentMail
    from tasks.imports import CeleryImportJobs
    from tasks.privacy import CeleryErasureKick

    if config is None:
        config = Config.from_env()
    elif isinstance(config, dict):
        config = Config.from_env().with_overrides(**config)
    from outreach.startup import check_startup

    check_startup(config)

    app = Flask(__name__)
    # outreach has no browser sessions; opening a signed-cookie session on every request
    # costs tens of microseconds on the intake path
    app.session_interface = NoSessions()
    if config.trusted_proxies:
        # the per-client rate limit needs the client's address, not the proxy's
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=config.trusted_proxies, x_host=config.trusted_proxies)
    app.config.update(
        SECRET_KEY=config.secret_key,
        # console sessions signed with an older secret stay valid through a rotation
        SECRET_KEY_FALLBACKS=list(config.secret_keys[1:]),
        MAX_CONTENT_LENGTH=config.max_content_length,
        MAX_FORM_MEMORY_SIZE=config.max_content_length,
        JSON_SORT_KEYS=False,
    )
    store = store_module.from_config(config)
    app.extensions["outreach.config"] = config
    app.extensions["outreach.store"] = store

    celery_app = celery_init_app(app, config)

    def publish_drain() -> None:
        try:
            # bounded: at most two tries, each within the broker's socket timeout, so a hung
            # broker cannot hold a registration's answer past the request timeout
            celery_app.send_task("outreach.ingest.drain", queue="ingest",
                                 retry_policy={"max_retries": 1, "interval_start": 0})
        except Exception:  # noqa: BLE001 - stored already; the periodic drain picks it up
            log.warning("could not ask for an ingest run; the periodic drain will", exc_info=True)

    kick_ingest = IngestKicker(publish_drain, config.ingest_kick_ms / 1000)
    app.extensions["outreach.kick_ingest"] = kick_ingest
    app.extensions["outreach.jobs"] = CeleryJobs(celery_app)
    app.extensions["outreach.messenger"] = SmtpMessenger(config)
    # what intake needs: the per-process cache of form rules, and a way to ask for a double
    # opt-in confirmation email
    app.extensions["outreach.asset_rules"] = RulesCache(store, config.asset_rules_cache_seconds)
    app.extensions["outreach.consent_mail"] = CeleryConsentMail(celery_app)
    app.extensions["outreach.import_jobs"] = CeleryImportJobs(celery_app)
    app.extensions["outreach.erasure_kick"] = CeleryErasureKick(celery_app)
    register_error_handlers(app)
    register_cors(app, config)
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    """The three faces: the JSON API, the public pages and links, the console."""
    from outreach.web.api import (
        assets,
        campaigns,
        crm,
        imports,
        intake,
        journeys,
        keys,
        lists,
        ops,
        people,
        sales,
        segments,
        suppressions,
    )
    from outreach.web.api.auth import public
    from outreach.web.console import auth as console_auth
    from outreach.web.console import forms, marketing, settings, views
    from outreach.web.console import journeys as console_journeys
    from outreach.web.console import people as console_people
    from outreach.web.console import sales as console_sales
    from outreach.web.console import segments as console_segments
    from outreach.web.console.base import bp as console
    from outreach.web.public import pages, provider_hooks, tracking

    for module in (intake, people, lists, campaigns, tracking, crm, ops, suppressions, sales,
                   assets, imports, segments, journeys, provider_hooks, pages, keys):
        app.register_blueprint(module.bp)
    console_auth.init_app(app)
    for module in (views, marketing, console_people, settings, console_sales, forms,
                   console_segments, console_journeys):
        assert module.bp is console  # the console's routes are added on import
    app.register_blueprint(console)
    # a newcomer opening the service in a browser lands on the console (not a JSON 404)
    app.add_url_rule("/", "root", public(lambda: redirect("/console/")))
