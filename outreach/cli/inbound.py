"""``outreach inbound``: an SMTP server (aiosmtpd) that takes bounces and complaints.

Mail is accepted only for addresses at ``OUTREACH_BOUNCE_DOMAIN`` (anything else: ``550
5.7.1``, no relaying), up to ``inbound_max_message_bytes`` (aiosmtpd answers ``552``
beyond), from at most ``inbound_max_connections_per_client`` connections per client
address at a time (``421`` beyond). Each message goes through the one processor
(``outreach.campaigns.bounces.processor``) in a worker thread; a store failure is a ``451`` so the
sending MTA tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from outreach.campaigns.bounces import processor as bounces
from outreach.config import Config
from outreach.store import Store

log = logging.getLogger(__name__)


class BounceHandler:
    def __init__(self, store: Store, config: Config) -> None:
        self.store, self.config = store, config
        self.domain = config.bounce_domain.lower().rstrip(".")

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if domain != self.domain:
            return "550 5.7.1 relaying denied: this server takes mail for its bounce domain only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, bounces.process_message, self.store, self.config, data,
                list(envelope.rcpt_tos))
        except Exception:  # the store is down or a bug: the sender keeps the report for later
            log.exception("inbound: processing a message from %s failed", envelope.mail_from)
            return "451 4.3.0 temporary failure, try again later"
        log.info("inbound: %s from %s: %s", result["what"], envelope.mail_from, result["reports"])
        return "250 OK"


class LimitedSMTP(SMTP):
    """At most ``limit`` concurrent connections per client address."""

    counts: Counter[str] = Counter()
    limit = 10

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if peer else ""
        self.counts[self._client] += 1
        if self.counts[self._client] > self.limit:
            transport.write(b"421 4.7.0 too many connections from your address\r\n")
            self._refused = True
            transport.close()
            return
        self._refused = False
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.counts[self._client] -= 1
        if self.counts[self._client] <= 0:
            del self.counts[self._client]
        if not getattr(self, "_refused", False):
            super().connection_lost(error)


def serve(store: Store, config: Config, host: str, port: int) -> None:
    """Run until interrupted."""
    handler = BounceHandler(store, config)

    class Server(LimitedSMTP):
        counts: Counter[str] = Counter()
        limit = config.inbound_max_connections_per_client

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Server(handler, data_size_limit=config.inbound_max_message_bytes,
                           enable_SMTPUTF8=True, decode_data=False,
                           hostname=config.bounce_domain, ident="outreach inbound"),
            host=host, port=port)
        log.info("outreach inbound: listening on %s:%s for @%s", host, port, config.bounce_domain)
        print(f"outreach inbound: listening on {host}:{port} for mail to @{config.bounce_domain}",
              flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
