"""``outreach dkim keygen`` and ``outreach inbound`` (deliverability)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.group("dkim")
def dkim_group() -> None:
    """DKIM keys."""


@dkim_group.command("keygen")
@click.option("--selector", required=True, help="DKIM selector (s=)")
@click.option("--domain", required=True, help="signing domain (d=)")
@click.option("--out", "out", default=None, help="private key file (default S.private.pem)")
@click.option("--algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa", show_default=True)
@click.option("--bits", type=int, default=2048, show_default=True, help="RSA key size")
def keygen(selector: str, domain: str, out: str | None, algorithm: str, bits: int) -> None:
    """Write a new private key (PKCS#8 PEM, mode 0600) and print the DNS TXT record to
    publish at <selector>._domainkey.<domain> as the last line."""
    from outreach.mail.dkim import DkimError, DkimSigner, generate_key

    path = Path(out or f"{selector}.private.pem")
    try:
        pem = generate_key(algorithm, bits)
        signer = DkimSigner.from_pem(domain, selector, pem)
    except DkimError as exc:
        click.echo(f"outreach dkim keygen: {exc}", err=True)
        sys.exit(2)
    if path.exists():
        click.echo(f"outreach dkim keygen: {path} exists; not overwritten", err=True)
        sys.exit(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    click.echo(f"private key: {path.resolve()}")
    click.echo(f"publish this TXT record at {signer.record_name}:")
    click.echo(signer.dns_record())


@click.command("inbound")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=25, show_default=True)
def inbound(host: str, port: int) -> None:
    """SMTP server for bounces and complaints sent to OUTREACH_BOUNCE_DOMAIN."""
    import logging

    from outreach.cli.inbound import serve
    from outreach.config import Config, ConfigError
    from outreach.store import from_config

    config = Config.from_env()
    try:
        from outreach.startup import check_startup
    except ImportError:  # pragma: no cover - older checkouts
        check_startup = None
    if check_startup is not None:
        check_startup(config)
    if not config.bounce_domain:
        raise ConfigError("OUTREACH_BOUNCE_DOMAIN is not set: outreach inbound takes mail for it")
    if config.embedded:
        raise ConfigError("OUTREACH_REDIS_URL is not set: reports would go to a throwaway store")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(from_config(config), config, host, port)
