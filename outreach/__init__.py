"""outreach: registrations in, deduplicated lists, exactly-once campaigns, leads to deals."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.sessions import NullSession, SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from outreach.config import Config, ConfigError

__version__ = "0.1.0"

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
    from outreach.api import register_blueprints
    from outreach.api.cors import register_cors
    from outreach.api.errors import register_error_handlers
    from outreach.mail.smtp import SmtpMessenger
    from outreach.services.intake import IngestKicker
    from tasks import celery_init_app
    from tasks.campaigns import CeleryJobs

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
    register_error_handlers(app)
    register_cors(app, config)
    register_blueprints(app)
    return app
