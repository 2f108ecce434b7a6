"""The service as an operator runs it, driven over real HTTP: gunicorn (two forked workers,
app preloaded in the master), `outreach worker`, a key from `outreach api-key create`."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import wait_for

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    def __init__(self, base: str, key: str = "") -> None:
        self.base, self.key = base, key

    def call(self, method: str, path: str, body: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        headers = {"Content-Type": content_type} if body is not None else {}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def post_json(self, path: str, data: Any) -> tuple[int, Any]:
        return self.call("POST", path, json.dumps(data).encode())

    def post_form(self, path: str, data: dict[str, str]) -> tuple[int, Any]:
        return self.call("POST", path, urllib.parse.urlencode(data).encode(),
                         "application/x-www-form-urlencoded")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body


@pytest.fixture
def api(make_service) -> Iterator[tuple[Any, Http]]:
    service = make_service()
    service.start_worker()
    env = {**os.environ, **service.env}
    created = subprocess.run([str(BIN / "outreach"), "api-key", "create", "operator"], env=env,
                             capture_output=True, text=True, check=True, timeout=60)
    key = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    log = open(service.tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "--preload", "-b", f"127.0.0.1:{port}",
         "outreach:create_app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=service.tmp,  # gunicorn puts its working directory on sys.path
    )
    http = Http(f"http://127.0.0.1:{port}", key)

    def up() -> bool:
        try:
            return http.call("GET", "/healthz")[0] == 200
        except OSError:
            return proc.poll() is not None
    try:
        wait_for(up, timeout=30, message="gunicorn to answer")
        assert proc.poll() is None, (service.tmp / "gunicorn.log").read_text()
        yield service, http
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_forms_and_json_over_http_become_exact_leads(api) -> None:
    service, http = api
    rng = random.Random(7)
    people = [f"visitor{n}.x+wp@example.org" for n in range(40)]
    posted = []
    for round_no, asset in enumerate(("zero-trust-guide", "summit-2026", "zero-trust-guide")):
        kind = "event" if asset.startswith("summit") else "white_paper"
        for n, email in enumerate(people):
            variant = " " * rng.randint(0, 2) + "".join(
                c.upper() if rng.random() < 0.5 else c for c in email)
            body = {"kind": kind, "asset": asset, "email": variant, "first_name": f"V{n}",
                    "consent": "on" if round_no else "true"}
            if (n + round_no) % 2:
                status, answer = http.post_form("/api/v1/registrations", body)
            else:
                status, answer = http.post_json("/api/v1/registrations",
                                                {**body, "consent": True})
            assert status == 202, answer
            posted.append(answer["id"])
    assert len(set(posted)) == len(posted) == 120

    status, error = http.post_json("/api/v1/registrations",
                                   {"kind": "event", "asset": "Bad Slug", "email": "nope"})
    assert status == 422 and set(error["error"]["fields"]) == {"asset", "email"}

    wait_for(lambda: service.processed_count() >= 120, timeout=60, message="ingest")
    leads = http.get("/api/v1/leads?limit=500")["items"]
    assert sorted(lead["email"] for lead in leads) == sorted(people)
    for lead in leads:
        assert lead["consent"] is True
        assert [(r["kind"], r["asset"]) for r in lead["registrations"]] == [
            ("white_paper", "zero-trust-guide"), ("event", "summit-2026"),
            ("white_paper", "zero-trust-guide")]
        assert lead["score"] == 20  # a new asset, and an event after a white paper
    lists = http.get("/api/v1/lists")["items"]
    lead_lists = [lst for lst in lists if lst["member_type"] == "lead"]
    assert sorted(lst["asset"]["slug"] for lst in lead_lists) == ["summit-2026", "zero-trust-guide"]
    for lst in lead_lists:
        members = http.get(f"/api/v1/lists/{lst['id']}/members?limit=500")["items"]
        assert len(members) == 40
    last = http.get(f"/api/v1/registrations/{posted[-1]}")
    assert last["status"] == "processed" and last["person"]["type"] == "lead"
    assert http.call("GET", "/readyz")[0] == 200
    assert Http(http.base).call("GET", "/api/v1/leads")[0] == 401
