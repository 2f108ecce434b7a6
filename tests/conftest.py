"""Unit-test fixtures: an app on the in-process fake Redis, one key prefix per test.

No servers: the store is fakeredis (``outreach.store.embedded``), the broker is
``memory://`` and the ingest kick is recorded instead of publishing a Celery task.
Registrations are processed by calling the ingest service directly (``env.drain()``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest

import outreach
from outreach.people import ingest
from outreach.platform.apikeys import create_api_key

_serial = itertools.count(1)
# the service refuses the built-in or a short secret outside `outreach dev` (outreach/startup.py)
TEST_SECRET_KEY = "unit-test-secret-key-0123456789-abcdefghijklmnop"
os.environ.setdefault("OUTREACH_SECRET_KEY", TEST_SECRET_KEY)


class Env:
    """One app with its own keys in the shared fake Redis, plus request helpers."""

    def __init__(self, **overrides: Any) -> None:
        self.prefix = f"ut{os.getpid()}-{next(_serial)}"
        config = {
            "redis_url": "",
            "key_prefix": self.prefix,
            "intake_rate_limit": "0",
            "broker_url": "memory://",
            # one kick per drain, whatever the clock does while a test runs
            "ingest_kick_ms": 24 * 3600 * 1000,
            # tests open messages the moment they are sent; the machine-open tests set it
            "machine_open_seconds": 0,
            # tests register for assets no one made first, as `outreach dev` allows (issue 17:
            # off in production; tests of that rule set it to "0")
            "intake_create_assets": "1",
        }
        config.update(overrides)
        self.app = outreach.create_app(config)
        self.kicks: list[int] = []
        self.app.extensions["outreach.kick_ingest"] = lambda: self.kicks.append(1)
        # an erasure job runs at once (as a worker would on the nudge)
        self.app.extensions["outreach.erasure_kick"] = self.run_erasures
        self.store = self.app.extensions["outreach.store"]
        self.config = self.app.extensions["outreach.config"]
        self.client = self.app.test_client()
        self.api_key = create_api_key(self.store, "test")
        self.auth = {"Authorization": f"Bearer {self.api_key}"}

    # intake
    def register(self, email: str = "ann@example.com", kind: str = "white_paper",
                 asset: str = "guide", headers: dict[str, str] | None = None,
                 **fields: Any) -> Any:
        body = {"kind": kind, "asset": asset, "email": email, **fields}
        return self.client.post("/api/v1/registrations", json=body, headers=headers or {})

    def run_erasures(self) -> int:
        from outreach.privacy.erasure import run_due_erasures

        return run_due_erasures(self.store, self.config)

    def erase(self, email: str) -> dict[str, Any]:
        """DELETE /api/v1/people/<email> (202, a job) and the job's status once run."""
        response = self.client.delete(f"/api/v1/people/{email}", headers=self.auth)
        assert response.status_code == 202, response.get_json()
        job = response.get_json()
        assert job["status_url"].endswith(f"/api/v1/erasures/{job['id']}")
        return self.get(f"/api/v1/erasures/{job['id']}").get_json()

    def drain(self) -> ingest.DrainResult:
        return ingest.drain(self.store, self.config, "test-consumer")

    def registered(self, email: str = "ann@example.com", **kwargs: Any) -> dict[str, Any]:
        """Register, drain and return the registration's status (processed)."""
        response = self.register(email, **kwargs)
        assert response.status_code == 202, response.get_json()
        self.drain()
        return self.get(f"/api/v1/registrations/{response.get_json()['id']}").get_json()

    # marketer API
    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=json, headers=self.auth, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.patch(path, json=json, headers=self.auth, **kwargs)

    def close(self) -> None:
        keys = list(self.store.r.scan_iter(match=self.store.keys.tag + ":*", count=1000))
        if keys:
            self.store.r.delete(*keys)

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def make_env() -> Callable[..., Env]:
    """A factory for fresh environments; use it as ``with make_env() as env:`` inside
    hypothesis tests, where each example needs a clean store."""
    return Env


@pytest.fixture
def env() -> Iterator[Env]:
    with Env() as e:
        yield e


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message"[, "fields"]}}``."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if status == 422:
        assert isinstance(error["fields"], dict) and error["fields"]
        for messages in error["fields"].values():
            assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)
    else:
        assert "fields" not in error
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture(scope="session")
def check_error() -> Callable[..., dict[str, Any]]:
    """``check_error(response, status, code=None)`` asserts the one error shape."""
    return assert_error


# ---------------------------------------------------------------- campaigns

class FakeMessenger:
    """A messenger (``send(msg, mail_from, rcpt_to)``) that keeps what it is given.

    ``fail[address]`` is an exception to raise for that address, or a list of them
    (consumed one per attempt; ``None`` in the list means deliver). ``before_send``
    runs before every attempt (e.g. to pause the campaign after N sends).
    """

    def __init__(self) -> None:
        self.messages: list[Any] = []  # (msg, mail_from, rcpt_to) actually delivered
        self.raw: list[bytes] = []  # what went over the wire for each of them
        self.attempts: list[str] = []
        self.fail: dict[str, Any] = {}
        self.before_send: Callable[[str], None] | None = None
        self.smtputf8 = True  # whether the "relay" advertises SMTPUTF8
        self.envelopes: list[Any] = []  # the envelope of each delivered message

    def send(self, msg: Any, mail_from: str, rcpt_to: str,
             before_data: Callable[[], bool] | None = None) -> str:
        from outreach.mail.smtp.classify import ClaimLost
        from outreach.mail.smtp.envelope import envelope_for
        from outreach.mail.smtp.messenger import dot_stuffed

        self.attempts.append(rcpt_to)
        if self.before_send is not None:
            self.before_send(rcpt_to)
        plan = self.fail.get(rcpt_to)
        exc = (plan.pop(0) if plan else None) if isinstance(plan, list) else plan
        if exc is not None:
            raise exc
        envelope = envelope_for(mail_from, rcpt_to, self.smtputf8,  # as SmtpMessenger does
                                str(msg.get("From") or ""))
        if before_data is not None and not before_data():
            raise ClaimLost(rcpt_to)
        self.envelopes.append(envelope)
        # kept as a mail server would see it: the DATA bytes, and parsed back from them

        self.raw.append(dot_stuffed(msg))
        # the server takes the stuffing off (RFC 5321 4.5.2) before anyone reads the message
        data = self.raw[-1][:-3].replace(b"\r\n..", b"\r\n.")
        parsed = message_from_bytes(data, policy=default_policy)
        self.messages.append((parsed, mail_from, rcpt_to))
        return "250 OK"

    @property
    def recipients(self) -> list[str]:
        return [rcpt for _, _, rcpt in self.messages]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rcpt in self.recipients:
            out[rcpt] = out.get(rcpt, 0) + 1
        return out

    def to(self, address: str) -> Any:
        (msg,) = [m for m, _, rcpt in self.messages if rcpt == address]
        return msg


class CampaignEnv(Env):
    """An ``Env`` for campaigns: recorded jobs (``NoJobs``) that tests run by hand, a fake
    messenger, and helpers for people, lists, templates and campaigns."""

    defaults: dict[str, Any] = {
        "base_url": "https://mail.example.com",
        "from_email": "news@outreach.example",
        "secret_key": TEST_SECRET_KEY,
        "send_batch_size": 3,
        "send_window_batches": 2,
    }

    def __init__(self, **overrides: Any) -> None:
        from outreach.platform.jobs import NoJobs

        super().__init__(**{**self.defaults, **overrides})
        self.jobs = NoJobs()
        self.app.extensions["outreach.jobs"] = self.jobs
        self.messenger = FakeMessenger()
        self._done_calls = 0
        self.attempts: dict[tuple[str, int], int] = {}

    # people and lists
    def leads(self, *emails: str, asset: str = "guide", consent: bool = True, **fields: Any) -> str:
        """Register ``emails`` for ``asset`` and drain; returns the asset's lead list id."""
        for email in emails:
            response = self.register(email, asset=asset, consent=consent, **fields)
            assert response.status_code == 202, response.get_json()
        self.drain()
        return self.asset_list(asset, "lead")

    def asset_list(self, asset: str, member_type: str) -> str:
        items = self.get("/api/v1/lists?limit=500").get_json()["items"]
        (found,) = [i["id"] for i in items
                    if i["asset"] and i["asset"]["slug"] == asset and i["member_type"] == member_type]
        return found

    def manual_list(self, *emails: str, member_type: str = "lead") -> str:
        created = self.post("/api/v1/lists", json={"name": "manual", "member_type": member_type})
        list_id = created.get_json()["id"]
        if emails:
            added = self.post(f"/api/v1/lists/{list_id}/members", json={"emails": list(emails)})
            assert added.get_json()["unknown"] == [], added.get_json()
        return list_id

    def lead_of(self, email: str) -> dict[str, Any]:
        (lead,) = self.get("/api/v1/leads", query_string={"email": email}).get_json()["items"]
        return lead

    # templates and campaigns
    def template(self, subject: str = "Hello {{ first_name }}",
                 html: str = '<p>Hi {{ first_name }}</p><a href="https://example.com/a">A</a>',
                 text: str = "Hi {{ first_name }}", name: str = "t") -> str:
        response = self.post("/api/v1/templates",
                             json={"name": name, "subject": subject, "html": html, "text": text})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def campaign(self, list_ids: list[str], template_id: str | None = None, **fields: Any) -> str:
        body = {"name": "c", "template_id": template_id or self.template(), "list_ids": list_ids,
                **fields}
        response = self.post("/api/v1/campaigns", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def launched(self, list_ids: list[str], template_id: str | None = None, **fields: Any) -> str:
        campaign_id = self.campaign(list_ids, template_id, **fields)
        response = self.post(f"/api/v1/campaigns/{campaign_id}/launch")
        assert response.status_code == 200, response.get_json()
        return campaign_id

    def show(self, campaign_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/campaigns/{campaign_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    # driving the services by hand
    def pending(self) -> list[tuple[str, tuple[object, ...]]]:
        calls = self.jobs.calls[self._done_calls:]
        self._done_calls = len(self.jobs.calls)
        return calls

    def dispatch(self, campaign_id: str) -> int:
        from outreach.campaigns import dispatch

        return dispatch.dispatch(self.store, self.config, self.jobs, campaign_id)

    def send_batch(self, campaign_id: str, batch_no: int, attempt: int = 0) -> Any:
        from outreach.campaigns.sending.batch import send_batch

        return send_batch(self.store, self.config, self.messenger, self.jobs, campaign_id,
                          batch_no, attempt)

    def watch(self, campaign_id: str) -> float | None:
        from outreach.campaigns import watch

        return watch.watch(self.store, self.config, self.jobs, campaign_id)

    def pump(self, max_steps: int = 500) -> list[Any]:
        """Run recorded dispatch, retry_failed and send_batch jobs (and the retries a send
        task would queue) until none is left; watch jobs are left to the test. Returns batch results."""
        results = []
        queue = self.pending()
        steps = 0
        while queue:
            name, args = queue.pop(0)
            steps += 1
            assert steps <= max_steps, "jobs never settle"
            if name == "dispatch":
                self.dispatch(str(args[0]))
            elif name == "retry_failed":
                from outreach.campaigns import lifecycle

                lifecycle.requeue_failed(self.store, self.jobs, str(args[0]),
                                         self.config.send_batch_size)
            elif name == "send_batch":
                campaign_id, batch_no = str(args[0]), int(args[1])  # type: ignore[call-overload]
                attempt = self.attempts.get((campaign_id, batch_no), 0)
                result = self.send_batch(campaign_id, batch_no, attempt)
                results.append(result)
                if result.retry_in is not None:
                    self.attempts[(campaign_id, batch_no)] = attempt + 1
                    self.jobs.send_batch(campaign_id, batch_no, countdown=result.retry_in)
            queue += self.pending()
        return results

    def run(self, campaign_id: str) -> dict[str, Any]:
        """Pump the jobs, then let the watch look once; returns the campaign as the API shows it."""
        self.pump()
        self.watch(campaign_id)
        return self.show(campaign_id)

    def ledger(self, campaign_id: str) -> dict[str, str]:
        from outreach.campaigns.model import LEDGER_STATES

        raw = self.store.r.hgetall(self.store.keys.campaign_ledger(campaign_id))
        return {email: LEDGER_STATES[value[0]] for email, value in raw.items()}


@pytest.fixture
def cenv() -> Iterator[CampaignEnv]:
    with CampaignEnv() as e:
        yield e


@pytest.fixture(scope="session")
def make_cenv() -> Callable[..., CampaignEnv]:
    """``with make_cenv(send_max_consecutive_failures=2) as env:`` for other settings."""
    return CampaignEnv


class RoundTrips:
    """Counts the round trips a store makes: each command sent on its own (WATCH on a
    pipeline too), each pipeline or transaction."""

    def __init__(self, store: Any, monkeypatch: Any) -> None:
        import redis

        self.count = 0
        real_command = store.r.execute_command
        real_pipeline = redis.client.Pipeline.execute
        real_immediate = redis.client.Pipeline.immediate_execute_command

        def command(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real_command(*args, **kwargs)

        def pipeline(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            if pipe.command_stack:
                self.count += 1
            return real_pipeline(pipe, *args, **kwargs)

        def immediate(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real_immediate(pipe, *args, **kwargs)

        monkeypatch.setattr(store.r, "execute_command", command)
        monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
        monkeypatch.setattr(redis.client.Pipeline, "immediate_execute_command", immediate)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], RoundTrips]:
    """``round_trips(store)``: a ``RoundTrips`` counting that store's round trips from now."""
    return lambda store: RoundTrips(store, monkeypatch)
