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


def start_in_process_worker(app: Flask) -> tuple[threading.Thread, Any]:
    """A Celery worker on threads inside this process, consuming the in-memory broker, and
    the beat on a thread of its own (the worker's embedded beat forks a process: its tasks
    went to that process's copy of the in-memory broker, where nothing ran them, and the
    process outlived ``outreach dev``). The beat keeps its schedule in memory (no file).
    Returns the worker's thread and the beat service (a thread)."""
    from celery.beat import EmbeddedService

    celery_app = app.extensions["celery"]

    def run() -> None:
        worker = celery_app.Worker(
            pool="threads", concurrency=4, queues=["ingest", "send", "default"],
            loglevel="WARNING", without_heartbeat=True, without_mingle=True,
            without_gossip=True, beat=False,
            quiet=True,  # no banner: the URLs and sign-ins stay the last thing printed
        )
        worker.start()

    worker = threading.Thread(target=run, name="celery-worker", daemon=True)
    worker.start()
    beat = EmbeddedService(celery_app, thread=True, scheduler_cls="celery.beat:Scheduler")
    beat.start()
    return worker, beat


def listening_server(app: Flask, host: str, port: int) -> Any:
    """The dev HTTP server, bound and listening, serving on a thread once this returns and
    its ``/healthz`` answered: "serving" is printed only after the port answers."""
    import time
    import urllib.request

    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    probe_host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    probe_host = f"[{probe_host}]" if ":" in probe_host else probe_host
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{probe_host}:{server.port}/healthz", timeout=2):
                return server
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run_dev(config: Config, host: str, port: int) -> None:
    from outreach.platform.apikeys import create_api_key
    from outreach.platform.users import create_user

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per connection
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # memory:// has no host
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line for the readiness probe
    app, capture = build_dev_app(config, host, port)
    start_in_process_worker(app)
    key = create_api_key(app.extensions["outreach.store"], "dev")
    _, password = create_user(app.extensions["outreach.store"], "admin@localhost.localdomain", "admin")
    server = listening_server(app, host, port)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    url = f"http://{host}:{port}"
    print(f"outreach dev: serving {url}  (SMTP capture on {capture.host}:{capture.port}; "
          f"read mail at {url}/dev/mail)", flush=True)
    print(f"API key: {key}", flush=True)
    print(f"Console: {url}/console/  sign in as admin@localhost.localdomain / {password}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
