"""``outreach user ...``: console users (create, list, disable, enable, set-password, role)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from outreach.config import Config
from outreach.errors import ServiceError


def _store():  # type: ignore[no-untyped-def]
    from outreach import create_app

    config = Config.from_env()
    if config.embedded:
        click.echo("OUTREACH_REDIS_URL is not set: the user would live in a throwaway store.",
                   err=True)
        sys.exit(2)
    return create_app(config).extensions["outreach.store"]


def _fail(exc: ServiceError) -> NoReturn:
    detail = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in (exc.fields or {}).items())
    click.echo(f"error: {exc.message}" + (f" ({detail})" if detail else ""), err=True)
    sys.exit(1)


T = TypeVar("T")


def _change(store: Any, change: Callable[..., T], *args: Any) -> T:
    """``change(store, *args)``, a refusal (``ServiceError``) reported as an error (exit 1)."""
    try:
        return change(store, *args)
    except ServiceError as exc:
        _fail(exc)


@click.group("user")
def user() -> None:
    """Console users (admin, marketer, sales)."""


@user.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "marketer", "sales"]))
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of generating one.")
def user_create(email: str, role: str, password_stdin: bool) -> None:
    """Create a user; a generated password is printed as the last line."""
    from outreach.platform.users import create_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    created, password = _change(_store(), create_user, email, role, password)
    click.echo(f"User {created['email']} ({created['role']}) created.")
    if not password_stdin:
        click.echo("Password (shown once, stored as an Argon2id hash):")
        click.echo(password)


@user.command("list")
def user_list() -> None:
    """Every user: email, role, active or disabled."""
    from outreach.platform.users import find_users

    for found in find_users(_store()):
        state = "active" if found["active"] else "disabled"
        click.echo(f"{found['email']}\t{found['role']}\t{state}")


@user.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: no more sign-ins, open sessions end, their API keys answer 401."""
    from outreach.platform.apikeys import find_api_keys
    from outreach.platform.users import disable_user

    store = _store()
    disabled = _change(store, disable_user, email)
    click.echo(f"User {disabled['email']} disabled; their open sessions have ended.")
    keys = find_api_keys(store, user=disabled["email"])
    if keys:
        click.echo("Their API keys, now refused (401) until the user is enabled again "
                   "(revoke with DELETE /api/v1/api-keys/<name>):")
        for key in keys:
            click.echo(f"  {key['name']}\t{key['id']}\tlast used {key['last_used_at'] or 'never'}")
    else:
        click.echo("They have no API keys.")


@user.command("enable")
@click.argument("email")
def user_enable(email: str) -> None:
    """Enable a disabled user again (same password and role; their keys work again)."""
    from outreach.platform.users import enable_user

    enabled = _change(_store(), enable_user, email)
    click.echo(f"User {enabled['email']} ({enabled['role']}) enabled.")


@user.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(["admin", "marketer", "sales"]))
def user_role(email: str, role: str) -> None:
    """Change a user's role (their API keys follow it); their open sessions end."""
    from outreach.platform.users import set_role

    changed = _change(_store(), set_role, email, role)
    click.echo(f"User {changed['email']} is now {changed['role']}; their open sessions have ended.")


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input instead of generating one.")
def user_set_password(email: str, password_stdin: bool) -> None:
    """Set a user's password (generated and printed as the last line, unless read from
    standard input); every open session of the user ends."""
    from outreach.platform.users import generate_password, set_password

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else generate_password()
    _change(_store(), set_password, email, password)
    click.echo(f"Password of {email.strip()} changed; their open sessions have ended.")
    if not password_stdin:
        click.echo("Password (shown once, stored as an Argon2id hash):")
        click.echo(password)
