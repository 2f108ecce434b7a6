"""Reference apps for bench/intake.py, served by the same gunicorn setup as outreach.

``BENCH_VARIANT`` picks what the one route does on top of parsing the JSON body:

- ``bare``   parse the JSON body, answer 202 JSON (the reference of the target);
- ``xadd``   bare + one XADD of the payload to a Redis stream (redis-py, hiredis);
- ``schema`` bare + outreach's ``load_registration`` (validation, email check), no Redis;
- ``lua``    bare + outreach's ``accept_registration`` (payload, one XADD or the intake Lua
             when a rate limit is configured), no validation;
- ``full``   bare + ``load_registration`` + ``accept_registration``: outreach's work per request
             in a minimal app (config from the ``OUTREACH_*`` variables, as outreach's).
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from flask import Flask, abort, jsonify, request


def create_app() -> Flask:
    variant = os.environ.get("BENCH_VARIANT", "bare")
    app = Flask(__name__)
    counter = itertools.count(1)
    client: Any = None
    schema: Any = None
    accept: Any = None
    stream = "{benchref}:intake"
    if variant not in ("bare", "xadd", "schema", "lua", "full"):
        raise ValueError(f"unknown BENCH_VARIANT {variant!r}")
    if variant == "xadd":
        import redis

        client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], decode_responses=True)
    if variant in ("schema", "full"):
        from outreach.people.registration import load_registration

        schema = load_registration
    if variant in ("lua", "full"):
        from outreach.config import Config
        from outreach.people.intake import accept_registration
        from outreach.store import connect

        config = Config.from_env()
        store = connect(config.redis_url, config.key_prefix)

        def accept(data: dict[str, Any]) -> str:
            return accept_registration(store, config, data, request.remote_addr or "").id

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.post("/api/v1/registrations")
    def post_registration() -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400)
        if schema is not None:
            data = schema(data)
        if client is not None:
            entry_id = client.xadd(stream, {"d": json.dumps(data, separators=(",", ":"))})
        elif accept is not None:
            entry_id = accept(data)
        else:
            entry_id = f"{next(counter)}-0"
        return jsonify(id=entry_id, status="accepted"), 202

    return app
