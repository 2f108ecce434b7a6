"""Console users: Argon2id hashes, roles, disable, the sign-in throttle, the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from outreach.errors import Conflict, Invalid, NotFound, RateLimited
from outreach.platform import users


def test_create_hashes_with_argon2id_and_authenticates(env) -> None:
    created, password = users.create_user(env.store, " Ann@Example.COM ", "marketer")
    assert created == {"email": "ann@example.com", "role": "marketer", "active": True,
                       "created_at": created["created_at"], "last_sign_in_at": None}
    stored = env.store.r.hget(env.store.keys.user("ann@example.com"), "password")
    assert stored.startswith("$argon2id$") and password not in stored
    signed_in = users.authenticate(env.store, "ANN@example.com", password, "1.2.3.4")
    assert signed_in["email"] == "ann@example.com" and signed_in["last_sign_in_at"]
    with pytest.raises(Invalid):
        users.authenticate(env.store, "ann@example.com", password + "x", "1.2.3.4")


def test_bad_input_and_duplicates(env) -> None:
    with pytest.raises(Invalid) as bad_role:
        users.create_user(env.store, "a@example.com", "owner")
    assert "role" in bad_role.value.fields
    with pytest.raises(Invalid) as short:
        users.create_user(env.store, "a@example.com", "sales", "short")
    assert "password" in short.value.fields
    with pytest.raises(Invalid):
        users.create_user(env.store, "not an address", "sales")
    users.create_user(env.store, "a@example.com", "sales", "long enough pw")
    with pytest.raises(Conflict):
        users.create_user(env.store, "A@example.com", "admin")
    with pytest.raises(NotFound):
        users.get_user(env.store, "nobody@example.com")


def test_find_disable_and_can_own(env) -> None:
    users.create_user(env.store, "s@example.com", "sales")
    users.create_user(env.store, "m@example.com", "marketer")
    users.create_user(env.store, "boss@example.com", "admin")
    assert [u["email"] for u in users.find_users(env.store)] == [
        "s@example.com", "m@example.com", "boss@example.com"]
    assert [u["email"] for u in users.find_users(env.store, role="sales")] == ["s@example.com"]
    assert users.can_own(env.store, "s@example.com") and users.can_own(env.store, "boss@example.com")
    assert not users.can_own(env.store, "m@example.com")
    assert not users.can_own(env.store, "ghost@example.com")
    assert users.disable_user(env.store, "s@example.com")["active"] is False
    assert not users.can_own(env.store, "s@example.com")
    assert [u["email"] for u in users.find_users(env.store, active=False)] == ["s@example.com"]


def test_disabled_user_cannot_sign_in(env) -> None:
    _, password = users.create_user(env.store, "d@example.com", "sales")
    users.disable_user(env.store, "d@example.com")
    with pytest.raises(Invalid):
        users.authenticate(env.store, "d@example.com", password, "c")


def test_five_failures_throttle_that_account_from_that_client(env) -> None:
    _, password = users.create_user(env.store, "t@example.com", "sales")
    for _ in range(users.LOGIN_MAX_FAILURES):
        with pytest.raises(Invalid):
            users.authenticate(env.store, "t@example.com", "wrong password", "10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        users.authenticate(env.store, "t@example.com", password, "10.0.0.1")  # even the right one
    assert 0 < limited.value.retry_after <= users.LOGIN_WINDOW_SECONDS
    # another client, and the same client for another account, are not throttled
    assert users.authenticate(env.store, "t@example.com", password, "10.0.0.2")["email"]
    # the window passing (the key expiring) lifts it
    env.store.r.delete(env.store.keys.login_failures("t@example.com", "10.0.0.1"))
    assert users.authenticate(env.store, "t@example.com", password, "10.0.0.1")["email"]


def test_cli_create_list_disable(env, monkeypatch) -> None:
    from outreach.cli import users as cli

    monkeypatch.setattr(cli, "_store", lambda: env.store)
    runner = CliRunner()
    made = runner.invoke(cli.user, ["create", "cli@example.com", "--role", "sales"])
    assert made.exit_code == 0, made.output
    password = made.output.strip().splitlines()[-1]
    assert users.authenticate(env.store, "cli@example.com", password, "c")["role"] == "sales"
    piped = runner.invoke(cli.user, ["create", "p@example.com", "--role", "admin", "--password-stdin"],
                          input="a chosen passphrase\n")
    assert piped.exit_code == 0, piped.output
    assert users.authenticate(env.store, "p@example.com", "a chosen passphrase", "c")["role"] == "admin"
    again = runner.invoke(cli.user, ["create", "p@example.com", "--role", "admin"])
    assert again.exit_code == 1 and "already exists" in again.output
    listed = runner.invoke(cli.user, ["list"])
    assert "cli@example.com\tsales\tactive" in listed.output
    gone = runner.invoke(cli.user, ["disable", "cli@example.com"])
    assert gone.exit_code == 0
    assert "cli@example.com\tsales\tdisabled" in runner.invoke(cli.user, ["list"]).output
    assert runner.invoke(cli.user, ["disable", "nobody@example.com"]).exit_code == 1
