"""``outreach import leads|contacts FILE.csv`` and ``outreach export ...``."""

from __future__ import annotations

import csv
import sys
import time
from typing import Any

import click

from outreach.config import Config


def _store_and_config() -> tuple[Any, Config]:
    """The configured store alone: an import needs neither the web app nor Celery (a smaller
    process)."""
    from outreach.store import from_config

    config = Config.from_env()
    if config.embedded:
        click.echo("OUTREACH_REDIS_URL is not set: an import would go to a throwaway store.",
                   err=True)
        sys.exit(2)
    return from_config(config), config


@click.command("import")
@click.argument("type_", metavar="leads|contacts", type=click.Choice(["leads", "contacts"]))
@click.argument("path", metavar="FILE.csv", type=click.Path(dir_okay=False))
@click.option("--asset", default=None, help="Asset slug (default import-<date>).")
@click.option("--kind", default="white_paper", type=click.Choice(["white_paper", "event"]))
@click.option("--source", default="import", show_default=True)
@click.option("--consent", default="no", show_default=True, help="yes | no | column:NAME")
@click.option("--map", "mapping", multiple=True, metavar='"Header=field"')
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option("--errors", "errors_path", default=None, type=click.Path(dir_okay=False),
              help="Write the full error report (line,reason,field) to this CSV file.")
def import_command(type_: str, path: str, asset: str | None, kind: str, source: str,
                   consent: str, mapping: tuple[str, ...], dry_run: bool,
                   errors_path: str | None) -> None:
    """Import a CSV file of leads or contacts through the same validation and dedup as intake."""
    from outreach.errors import Invalid
    from outreach.people.imports.csvfile import NotCsv
    from outreach.people.imports.run import Options, run_import

    pairs = {}
    for item in mapping:
        header, sep, name = item.rpartition("=")
        if not sep or not header:
            click.echo(f"--map {item!r}: expected \"Header=field\"", err=True)
            sys.exit(2)
        pairs[header] = name.strip()
    options = Options(type=type_, asset=asset, kind=kind, source=source, consent=consent,
                      mapping=pairs, dry_run=dry_run)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        click.echo(f"{path}: {exc.strerror}", err=True)
        sys.exit(2)
    store, config = _store_and_config()
    import os

    total = os.fstat(raw.fileno()).st_size or 1
    error_file = open(errors_path, "w", newline="", encoding="utf-8") if errors_path else None  # noqa: SIM115
    error_writer = csv.writer(error_file) if error_file else None
    if error_writer:
        error_writer.writerow(["line", "reason", "field"])
    started = time.monotonic()
    with click.progressbar(length=total, label=f"Importing {type_}", file=sys.stderr,
                           show_eta=True, show_percent=True,
                           item_show_func=lambda r: r) as bar:
        done = [0]

        def progress(report: Any) -> None:
            position = raw.tell()
            bar.update(position - done[0], f"{report.rows:,} rows, "
                       f"{report.rows / max(time.monotonic() - started, 1e-9):,.0f} rows/s")
            done[0] = position

        def on_error(line: int, reason: str, name: str) -> None:
            if error_writer:
                error_writer.writerow([line, reason, name])

        try:
            report = run_import(store, config, raw, options, on_progress=progress,
                                on_error=on_error, max_errors=20)
        except NotCsv as exc:
            click.echo(f"\n{path}: not a readable CSV file: {exc}", err=True)
            sys.exit(2)
        except Invalid as exc:
            click.echo(f"\n{exc.message} {exc.fields}", err=True)
            sys.exit(2)
        finally:
            raw.close()
            if error_file:
                error_file.close()
    elapsed = time.monotonic() - started
    prefix = "Dry run (nothing written): would have " if dry_run else ""
    click.echo(f"{prefix}{report.rows} rows: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {report.failed} failed "
               f"({report.rows / max(elapsed, 1e-9):,.0f} rows/s; {report.encoding}, "
               f"delimiter {report.delimiter!r})")
    if report.ignored:
        click.echo(f"Ignored columns: {', '.join(report.ignored)}")
    for value in report.unknown_values():
        click.echo(f"Unknown value: {value}")
    for line, reason, name in report.errors[:20]:
        click.echo(f"line {line}: {reason}" + (f" ({name})" if name else ""))
    if report.failed > 20:
        click.echo(f"... and {report.failed - 20} more" +
                   (f" (all in {errors_path})" if errors_path else " (use --errors FILE)"))


@click.group("export")
def export_group() -> None:
    """Write CSV exports (the same as the .csv endpoints) to a file or stdout."""


def _write(chunks: Any, out: str) -> None:
    target = sys.stdout if out == "-" else open(out, "w", newline="", encoding="utf-8")  # noqa: SIM115
    try:
        for chunk in chunks:
            target.write(chunk)
    finally:
        if target is not sys.stdout:
            target.close()


def _exported(make: Any, out: str) -> None:
    from outreach.errors import ServiceError

    store, _ = _store_and_config()
    try:
        _write(make(store), out)
    except ServiceError as exc:
        click.echo(exc.message, err=True)
        sys.exit(1)


@export_group.command("members")
@click.argument("list_id")
@click.option("--out", "-o", default="-", show_default=True)
def export_members(list_id: str, out: str) -> None:
    """A list's members."""
    from outreach.people.exports import list_members_csv

    _exported(lambda store: list_members_csv(store, list_id), out)


@export_group.command("leads")
@click.option("--list", "list_id", default=None)
@click.option("--status", default=None, type=click.Choice(["new", "qualified", "disqualified"]))
@click.option("--email", default=None)
@click.option("--out", "-o", default="-", show_default=True)
def export_leads(list_id: str | None, status: str | None, email: str | None, out: str) -> None:
    """Leads (the same filters as GET /api/v1/leads)."""
    from outreach.people.exports import leads_csv

    _exported(lambda store: leads_csv(store, list_id=list_id, status=status, email=email), out)


@export_group.command("recipients")
@click.argument("campaign_id")
@click.option("--status", default=None)
@click.option("--out", "-o", default="-", show_default=True)
def export_recipients(campaign_id: str, status: str | None, out: str) -> None:
    """A campaign's recipients (optionally of one status)."""
    from outreach.campaigns.recipients import recipients_csv

    _exported(lambda store: recipients_csv(store, campaign_id, status), out)
