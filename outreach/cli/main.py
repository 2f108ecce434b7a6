"""The ``outreach`` command: dev, worker, beat, api-key."""

from __future__ import annotations

import sys

import click

from outreach.config import Config, ConfigError


class _Main(click.Group):
    """A malformed setting or a refused start-up is one line on stderr and exit 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Main)
def main() -> None:
    """outreach: marketing intake, lists, campaigns and lead conversion."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def dev(host: str, port: int) -> None:
    """Everything in one process on embedded defaults (no servers needed)."""
    from outreach.cli.dev import run_dev

    run_dev(Config.from_env(), host, port)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--queues", "-Q", default="ingest,send,default", show_default=True)
@click.option("--concurrency", "-c", default=None, type=int)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_context
def worker(ctx: click.Context, queues: str, concurrency: int | None, loglevel: str) -> None:
    """Celery worker for the configured app (extra arguments go to Celery)."""
    celery_app = _celery()
    argv = ["worker", "-Q", queues, "-l", loglevel]
    if concurrency:
        argv += ["-c", str(concurrency)]
    celery_app.worker_main(argv + list(ctx.args))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.pass_context
def beat(ctx: click.Context, loglevel: str) -> None:
    """Celery beat: periodic ingest safety net, campaign watch, conversion pass."""
    celery_app = _celery()
    celery_app.start(["beat", "-l", loglevel, "-s", "/tmp/outreach-beat-schedule",
                      "-S", "outreach.cli.health:HeartbeatScheduler", *ctx.args])


@main.group("api-key")
def api_key() -> None:
    """Marketer API keys."""


@api_key.command("create")
@click.argument("name")
@click.option("--role", "role", default=None, type=click.Choice(["admin", "marketer", "sales"]),
              help="What the key may do (the console's role table). Default: admin.")
@click.option("--user", "user", default=None,
              help="Email of the active console user the key acts for (author, owner, me); "
                   "the key has that user's role.")
def api_key_create(name: str, role: str | None, user: str | None) -> None:
    """Create a key; it is printed once, as the last line."""
    from outreach.errors import NotFound, ServiceError
    from outreach.platform.apikeys import DEFAULT_ROLE, create_api_key
    from outreach.platform.users import get_user

    if role and user:
        click.echo("error: --user gives the key the user's role; leave out --role.", err=True)
        sys.exit(1)
    store = _store("the key")
    if user:
        try:
            found = get_user(store, user)
        except NotFound:
            found = None
        if found is None or not found["active"]:
            click.echo(f"error: {user} is not an active console user.", err=True)
            sys.exit(1)
        user = found["email"]
        click.echo(f"The key acts for {user} and has their role ({found['role']}).")
    elif role is None:
        click.echo(f"No --role or --user given: the key has the {DEFAULT_ROLE} role "
                   "(everything, users and keys included).")
    try:
        key = create_api_key(store, name, user, role)
    except ServiceError as exc:
        click.echo(f"error: {exc.message} {exc.fields or ''}".rstrip(), err=True)
        sys.exit(1)
    click.echo(f"API key for {name!r}, role {role or ('of ' + user if user else DEFAULT_ROLE)} "
               "(shown once, stored hashed):")
    click.echo(key)


@main.group("retention")
def retention() -> None:
    """Bounds on what grows with time (OUTREACH_CAMPAIGN_DETAIL_DAYS)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only print the campaigns it would compact.")
def retention_run(dry_run: bool) -> None:
    """Compact every finished campaign older than OUTREACH_CAMPAIGN_DETAIL_DAYS to its stats
    and report; prints each one (id and name)."""
    from outreach import create_app
    from outreach.campaigns.retention import run_retention

    config = Config.from_env()
    if config.embedded:
        click.echo("OUTREACH_REDIS_URL is not set: there is nothing to compact.", err=True)
        sys.exit(2)
    app = create_app(config)
    done = run_retention(app.extensions["outreach.store"], config, dry_run=dry_run)
    verb = "would compact" if dry_run else "compacted"
    for campaign in done:
        click.echo(f"{verb} {campaign['id']} {campaign['name']}")
    click.echo(f"{len(done)} campaign{'s' if len(done) != 1 else ''} {verb} "
               f"(detail kept {config.campaign_detail_days} days)")


from outreach.cli.users import user as _user_commands  # noqa: E402

main.add_command(_user_commands)

from outreach.cli.imports import import_command as _import_command  # noqa: E402

main.add_command(_import_command)
from outreach.cli.imports import export_group as _export_group  # noqa: E402

main.add_command(_export_group)
from outreach.cli.deliverability import dkim_group as _dkim_group  # noqa: E402

main.add_command(_dkim_group)
from outreach.cli.deliverability import inbound as _inbound  # noqa: E402

main.add_command(_inbound)
from outreach.cli.health import beat_ping as _beat_ping  # noqa: E402
from outreach.cli.health import worker_ping as _worker_ping  # noqa: E402

main.add_command(_worker_ping)
main.add_command(_beat_ping)


def _store(what: str):  # type: ignore[no-untyped-def]
    """The configured store (never the embedded throwaway one: exit 2)."""
    from outreach import create_app

    config = Config.from_env()
    if config.embedded:
        click.echo(f"OUTREACH_REDIS_URL is not set: {what} would live in a throwaway store.",
                   err=True)
        sys.exit(2)
    return create_app(config).extensions["outreach.store"]


def _celery():  # type: ignore[no-untyped-def]
    from outreach import create_app

    config = Config.from_env()
    if config.embedded:
        click.echo("Set OUTREACH_REDIS_URL (or use `outreach dev`).", err=True)
        sys.exit(2)
    return create_app(config).extensions["celery"]


if __name__ == "__main__":
    main()
