"""``outreach dev``: the whole service in one process, no servers needed.

The same Flask app and the same Celery app and tasks, with an in-memory broker
and an in-process worker, an in-process fake Redis, and a local SMTP capture
whose mail can be read back at ``GET /dev/mail``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, Flask, jsonify

from outreach.config import Config
from outreach.mail.capture import SmtpCapture


def served_base_url(config: Config, host: str, port: int) -> str:
    """The base of tracking and unsubscribe links: ``OUTREACH_BASE_URL`` when it is set (not
    the default), else the address ``outreach dev`` serves."""
    if config.base_url != Config.base_url:
        return config.base_url
    shown = "localhost" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:  # an IPv6 address
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def build_dev_app(config: Config, host: str = "127.0.0.1", port: int = 8000) -> tuple[Flask, SmtpCapture]:
    from outreach import create_app
    from outreach.startup import dev_config
    from outreach.web.api.auth import public

    capture = SmtpCapture().start()
    overrides: dict[str, Any] = dict(
        redis_url="", broker_url="memory://", smtp_host=capture.host, smtp_port=capture.port,
        smtp_tls="none", smtp_user="", smtp_password="", intake_rate_limit="0",
        base_url=served_base_url(config, host, port),
    )
    app = create_app(dev_config(config.with_overrides(**overrides)))
    bp = Blueprint("dev", __name__)

    @bp.get("/dev/mail")
    @public
    def mail() -> Any:
        return jsonify(items=[m.summary() for m in capture.messages])

    app.register_blueprint(bp)
    return app, capture


def start_in_process_worker(app: Flask) -> None:
    """A Celery worker on threads inside this process, consuming the in-memory broker."""
    celery_app = app.extensions["celery"]

    def run() -> None:
        worker = celery_app.Worker(
            pool="threads", concurrency=4, queues=["ingest", "send", "default"],
            loglevel="WARNING", without_heartbeat=True, without_mingle=True,
            without_gossip=True, beat=True, schedule_filename="/tmp/outreach-dev-beat",
            quiet=True,  # no banner: the URLs and sign-ins stay the last thing printed
        )
        worker.start()

    threading.Thread(target=run, name="celery-worker", daemon=True).start()


def run_dev(config: Config, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from outreach.platform.apikeys import create_api_key

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per connection
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # memory:// has no host
    app, capture = build_dev_app(config, host, port)
    start_in_process_worker(app)
    key = create_api_key(app.extensions["outreach.store"], "dev")
    url = f"http://{host}:{port}"
    print(f"outreach dev: serving {url}  (SMTP capture on {capture.host}:{capture.port}; "
          f"read mail at {url}/dev/mail)", flush=True)
    print(f"API key: {key}", flush=True)
    from outreach.platform.users import create_user

    _, password = create_user(app.extensions["outreach.store"], "admin@localhost.localdomain", "admin")
    print(f"Console: {url}/console/  sign in as admin@localhost.localdomain / {password}", flush=True)
    run_simple(host, port, app, threaded=True, use_reloader=False)
