"""``outreach dkim keygen`` and ``outreach inbound`` (deliverability, issue 11)."""

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
