"""Sign-in budgets (per client /64 before any hash, per account and client, a per-account
pace), sessions that end on the server (sign-out, password change, role change, disable),
the user CLI, the change-my-password page, secret rotation and the metrics token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

import outreach
from outreach.config import Config
from outreach.errors import Invalid, RateLimited
from outreach.mail import verp
from outreach.platform import users
from outreach.tokens import Tokens

PASSWORD = "correct horse battery"
OLD_SECRET = "the-old-secret-0123456789-abcdefghijklmnopqrstu"
NEW_SECRET = "the-new-secret-0123456789-abcdefghijklmnopqrstu"


def _csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1).decode()


def sign_in(client: Any, email: str, password: str = PASSWORD, addr: str = "127.0.0.1") -> Any:
    page = client.get("/console/login", environ_base={"REMOTE_ADDR": addr})
    return client.post("/console/login", data={"email": email, "password": password,
                                               "csrf_token": _csrf(page.data)},
                       environ_base={"REMOTE_ADDR": addr})


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """Counts Argon2 verifications."""
    calls: list[int] = []
    real = users._hasher

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, *args: Any) -> Any:
            calls.append(1)
            return real.verify(*args)

    monkeypatch.setattr(users, "_hasher", Counting())
    return calls


# --- sign-in budgets -------------------------------------------------------------


def test_client_block_is_the_ipv6_64() -> None:
    assert users.client_block("2001:db8:1:2:aaaa::1") == users.client_block("2001:db8:1:2::ffff")
    assert users.client_block("2001:db8:1:2::1") != users.client_block("2001:db8:1:3::1")
    assert users.client_block("::ffff:10.0.0.1") == "10.0.0.1" == users.client_block("10.0.0.1")
    assert users.client_block("unknown") == "unknown"


def test_a_client_gets_20_failures_in_10_minutes_counted_before_any_hash(env, counted) -> None:
    _, password = users.create_user(env.store, "real@example.com", "sales")
    for i in range(users.CLIENT_MAX_FAILURES):  # random addresses: never the same account
        with pytest.raises(Invalid):
            users.authenticate(env.store, f"nobody{i}@example.com", "guess guess", f"2001:db8::{i + 1:x}")
    hashed = len(counted)
    assert hashed == users.CLIENT_MAX_FAILURES
    with pytest.raises(RateLimited) as limited:  # same /64, another address, a real account
        users.authenticate(env.store, "real@example.com", password, "2001:db8::beef")
    assert 0 < limited.value.retry_after <= users.CLIENT_WINDOW_SECONDS
    assert len(counted) == hashed  # refused before hashing
    # another /64 (or an IPv4 client) is not affected
    assert users.authenticate(env.store, "real@example.com", password, "2001:db8:0:1::1")["email"]
    assert users.authenticate(env.store, "real@example.com", password, "10.1.1.1")["email"]


def test_the_console_answers_429_with_retry_after_for_a_noisy_client(env, counted) -> None:
    users.create_user(env.store, "a@example.com", "admin", PASSWORD)
    for i in range(users.CLIENT_MAX_FAILURES):
        assert sign_in(env.client, f"x{i}@example.com", "wrong wrong", "2001:db8:5::1").status_code == 200
    before = len(counted)
    limited = sign_in(env.client, "a@example.com", PASSWORD, "2001:db8:5::2")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert len(counted) == before
    assert sign_in(env.client, "a@example.com", PASSWORD, "2001:db8:6::2").status_code == 302


def test_an_account_attacked_from_many_clients_is_slowed_not_locked(env) -> None:
    _, password = users.create_user(env.store, "target@example.com", "admin")
    for i in range(users.ACCOUNT_SLOW_AFTER):
        with pytest.raises(Invalid):
            users.authenticate(env.store, "target@example.com", "wrong pass!", f"10.0.{i}.1")
    with pytest.raises(Invalid):  # paced from now on: this one goes through ...
        users.authenticate(env.store, "target@example.com", "wrong pass!", "10.9.0.1")
    with pytest.raises(RateLimited) as slowed:  # ... the next one, right away, must wait
        users.authenticate(env.store, "target@example.com", password, "10.9.0.2")
    assert 1 <= slowed.value.retry_after <= users.ACCOUNT_MAX_PACE_SECONDS
    # the wait passing (the pace key expiring), the owner signs in: never a lock
    env.store.r.delete(env.store.keys.login_account_pace("target@example.com"))
    assert users.authenticate(env.store, "target@example.com", password, "10.9.0.2")["email"]


# --- sessions end on the server --------------------------------------------------


@pytest.fixture
def two_sessions(env) -> Any:
    users.create_user(env.store, "s@example.com", "sales", PASSWORD)
    users.create_user(env.store, "a@example.com", "admin", PASSWORD)
    other = env.app.test_client()
    assert sign_in(env.client, "s@example.com").status_code == 302
    assert sign_in(other, "s@example.com").status_code == 302
    assert env.client.get("/console/leads").status_code == 200
    assert other.get("/console/leads").status_code == 200
    return env, other


def _signed_out(client: Any) -> bool:
    response = client.get("/console/leads")
    return response.status_code == 302 and response.headers["Location"].startswith("/console/login")


def test_sign_out_ends_the_session_on_the_server(two_sessions) -> None:
    env, other = two_sessions
    copied = env.app.test_client()  # a copy of the cookie, taken before sign-out
    cookie = env.client.get_cookie("outreach_console", path="/console")
    copied.set_cookie(cookie.key, cookie.value, path="/console")
    assert copied.get("/console/leads").status_code == 200
    page = env.client.get("/console/leads").data
    assert b'action="/console/logout"' in page  # a sign-out button on every page
    out = env.client.post("/console/logout", data={"csrf_token": _csrf(page)})
    assert out.status_code == 302
    assert _signed_out(copied) and _signed_out(env.client) and _signed_out(other)


@pytest.mark.parametrize("change", ["password", "disable", "role"])
def test_a_password_change_a_disable_or_a_role_change_ends_every_session(two_sessions, change) -> None:
    env, other = two_sessions
    if change == "password":
        users.set_password(env.store, "s@example.com", "a brand new passphrase")
    elif change == "disable":
        users.disable_user(env.store, "s@example.com")
    else:
        users.set_role(env.store, "s@example.com", "marketer")
    assert _signed_out(env.client) and _signed_out(other)
    if change == "disable":
        users.enable_user(env.store, "s@example.com")
        assert _signed_out(other)  # enabling does not bring an old session back
    new = "a brand new passphrase" if change == "password" else PASSWORD
    assert sign_in(other, "s@example.com", new).status_code == 302
    assert other.get("/console/").status_code == 200


def test_change_my_password_page(two_sessions) -> None:
    env, other = two_sessions
    page = env.client.get("/console/account/password")
    assert page.status_code == 200 and b'name="new_password"' in page.data
    assert b'href="/console/account/password"' in env.client.get("/console/").data
    csrf = _csrf(page.data)
    no_csrf = env.client.post("/console/account/password", data={
        "current_password": PASSWORD, "new_password": "x" * 12, "confirm_password": "x" * 12})
    assert no_csrf.status_code == 400
    wrong = env.client.post("/console/account/password", data={
        "csrf_token": csrf, "current_password": "not it at all",
        "new_password": "another passphrase", "confirm_password": "another passphrase"})
    assert wrong.status_code == 422 and b"not your current password" in wrong.data
    differ = env.client.post("/console/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD,
        "new_password": "another passphrase", "confirm_password": "another passphrase!"})
    assert differ.status_code == 422 and b"differ" in differ.data
    short = env.client.post("/console/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD,
        "new_password": "short", "confirm_password": "short"})
    assert short.status_code == 422
    done = env.client.post("/console/account/password", data={
        "csrf_token": csrf, "current_password": PASSWORD,
        "new_password": "another passphrase", "confirm_password": "another passphrase"})
    assert done.status_code == 302 and done.headers["Location"].startswith("/console/login")
    assert _signed_out(env.client) and _signed_out(other)
    assert sign_in(env.client, "s@example.com", PASSWORD).status_code == 200  # the old one: no
    assert sign_in(env.client, "s@example.com", "another passphrase").status_code == 302


def test_user_cli_set_password_enable_role(env, monkeypatch) -> None:
    from outreach.cli import users as cli

    monkeypatch.setattr(cli, "_store", lambda: env.store)
    users.create_user(env.store, "c@example.com", "sales", PASSWORD)
    runner = CliRunner()
    piped = runner.invoke(cli.user, ["set-password", "c@example.com", "--password-stdin"],
                          input="a piped passphrase\n")
    assert piped.exit_code == 0, piped.output
    assert users.authenticate(env.store, "c@example.com", "a piped passphrase", "c")["email"]
    made = runner.invoke(cli.user, ["set-password", "c@example.com"])
    assert made.exit_code == 0, made.output
    assert users.authenticate(env.store, "c@example.com", made.output.strip().splitlines()[-1], "c")
    assert runner.invoke(cli.user, ["set-password", "c@example.com", "--password-stdin"],
                         input="short\n").exit_code == 1
    assert runner.invoke(cli.user, ["set-password", "ghost@example.com"]).exit_code == 1
    assert runner.invoke(cli.user, ["disable", "c@example.com"]).exit_code == 0
    enabled = runner.invoke(cli.user, ["enable", "c@example.com"])
    assert enabled.exit_code == 0 and users.get_user(env.store, "c@example.com")["active"]
    role = runner.invoke(cli.user, ["role", "c@example.com", "marketer"])
    assert role.exit_code == 0 and users.get_user(env.store, "c@example.com")["role"] == "marketer"
    assert runner.invoke(cli.user, ["role", "c@example.com", "owner"]).exit_code == 2
    assert runner.invoke(cli.user, ["enable", "ghost@example.com"]).exit_code == 1


# --- secrets ---------------------------------------------------------------------


def test_fallbacks_are_read_from_the_environment() -> None:
    config = Config.from_env({"OUTREACH_SECRET_KEY": NEW_SECRET,
                              "OUTREACH_SECRET_KEY_FALLBACKS": f" {OLD_SECRET} , older-one ",
                              "OUTREACH_METRICS_TOKEN": "tok"})
    assert config.secret_key_fallbacks == (OLD_SECRET, "older-one")
    assert config.secret_keys == (NEW_SECRET, OLD_SECRET, "older-one")
    assert config.metrics_token == "tok"
    assert Config.from_env({}).secret_key_fallbacks == ()


def test_links_signed_with_an_old_secret_still_verify() -> None:
    old, rotated, forgotten = Tokens(OLD_SECRET), Tokens(NEW_SECRET, (OLD_SECRET,)), Tokens(NEW_SECRET)
    for purpose in ("open", "click", "unsubscribe"):
        token = old.sign(purpose, ["cp1", "l:ld1"])
        assert rotated.read(purpose, token) == ["cp1", "l:ld1"]
        assert forgotten.read(purpose, token) is None
        # new tokens are signed with the new secret
        assert Tokens(NEW_SECRET).read(purpose, rotated.sign(purpose, ["x"])) == ["x"]
        assert old.read(purpose, rotated.sign(purpose, ["x"])) is None
    confirmation = old.sign_confirmation(["a@example.com", "guide", 1])
    assert rotated.read_confirmation(confirmation, 3600) == (["a@example.com", "guide", 1], "ok")
    assert forgotten.read_confirmation(confirmation, 3600) == (None, "invalid")


def test_bounce_return_paths_signed_with_an_old_secret_still_verify() -> None:
    address = verp.return_path(OLD_SECRET, "bounce.example.com", "cp1", "l:ld1")
    assert verp.read_return_path((NEW_SECRET, OLD_SECRET), address) == ("cp1", "l:ld1")
    assert verp.read_return_path(NEW_SECRET, address) is None
    msgid = verp.message_id(OLD_SECRET, "example.com", "cp1", "c:ct1")
    assert verp.read_message_id((NEW_SECRET, OLD_SECRET), msgid) == ("cp1", "c:ct1")
    assert verp.find_token((NEW_SECRET, OLD_SECRET), f"quoted: {address}") == ("cp1", "l:ld1")


def test_unsubscribe_link_from_before_the_rotation_works_over_http(make_env) -> None:
    with make_env(secret_key=NEW_SECRET, secret_key_fallbacks=(OLD_SECRET,)) as env:
        token = Tokens(OLD_SECRET).sign("unsubscribe", ["cp1", "l:ld1"])
        bogus = Tokens("some-other-secret-0123456789-abcdefghijklmn").sign("unsubscribe",
                                                                           ["cp1", "l:ld1"])
        assert env.client.get(f"/u/{token}").status_code == 200
        assert env.client.get(f"/u/{bogus}").status_code == 404


def test_console_sessions_survive_a_rotation_with_the_old_secret_as_fallback(make_env) -> None:
    with make_env(secret_key=OLD_SECRET) as env:
        users.create_user(env.store, "a@example.com", "admin", PASSWORD)
        assert sign_in(env.client, "a@example.com").status_code == 302
        cookie = env.client.get_cookie("outreach_console", path="/console")

        def served_by(**overrides: Any) -> int:
            app = outreach.create_app({"redis_url": "", "key_prefix": env.prefix,
                                       "broker_url": "memory://", **overrides})
            client = app.test_client()
            client.set_cookie(cookie.key, cookie.value, path="/console")
            return client.get("/console/").status_code

        assert served_by(secret_key=NEW_SECRET, secret_key_fallbacks=(OLD_SECRET,)) == 200
        assert served_by(secret_key=NEW_SECRET) == 302  # the old secret forgotten: sign in again


def test_metrics_and_readyz_need_the_token_when_set(make_env) -> None:
    with make_env(metrics_token="s3cret-metrics") as env:
        for path in ("/metrics", "/readyz"):
            assert env.client.get(path).status_code == 401, path
            assert env.client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = env.client.get(path, headers={"Authorization": "Bearer s3cret-metrics"})
            assert ok.status_code in (200, 503), path
        assert env.client.get("/healthz").status_code == 200
        assert b"s3cret-metrics" not in env.client.get(
            "/metrics", headers={"Authorization": "Bearer s3cret-metrics"}).data
    with make_env() as env:  # not set: open, as before
        assert env.client.get("/metrics").status_code == 200


def test_the_settings_page_hides_the_new_secrets() -> None:
    from outreach.platform.settings import effective_settings

    shown = {s["name"]: s["value"] for s in effective_settings(
        Config(secret_key_fallbacks=(OLD_SECRET,), metrics_token="tok"))}
    assert shown["OUTREACH_SECRET_KEY_FALLBACKS"] == "(set, hidden)"
    assert shown["OUTREACH_METRICS_TOKEN"] == "(set, hidden)"
