"""The mailbox door: ``OUTREACH_BOUNCE_MAILBOX=imaps://user:pass@host[:port]/INBOX`` (or
``imap://`` for a local server), polled by a beat task. Each message goes through the one
processor (``outreach.campaigns.bounces.processor``); it is flagged ``\\Deleted`` and expunged only
after it was processed, so a crash or a store failure leaves it for the next poll.

A message that is neither a report (DSN, ARF) nor an auto-reply, say a bounce in a format
no parser reads or a person's mail, is kept for a human: left unread (messages are read
with ``BODY.PEEK[]``) and marked with the keyword ``$OutreachKept`` so that later polls
pass over it.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from outreach.campaigns.bounces import processor as bounces
from outreach.config import Config, ConfigError
from outreach.store import Store

log = logging.getLogger(__name__)

KEPT = "$OutreachKept"  # an IMAP keyword: seen by the poll, not a report, left for a human


def mailbox_settings(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ConfigError("OUTREACH_BOUNCE_MAILBOX must be imaps://user:pass@host/MAILBOX")
    return {"ssl": parts.scheme == "imaps", "host": parts.hostname,
            "port": parts.port or (993 if parts.scheme == "imaps" else 143),
            "user": unquote(parts.username), "password": unquote(parts.password or ""),
            "mailbox": unquote(parts.path.strip("/")) or "INBOX"}


def _connect(settings: dict[str, Any]) -> imaplib.IMAP4:
    cls = imaplib.IMAP4_SSL if settings["ssl"] else imaplib.IMAP4
    return cls(settings["host"], settings["port"], timeout=30)


def poll(store: Store, config: Config, connect: Callable[[dict[str, Any]], Any] = _connect,
         limit: int = 500) -> dict[str, int]:
    """Process up to ``limit`` messages of the mailbox; returns counts."""
    settings = mailbox_settings(config.bounce_mailbox)
    imap = connect(settings)
    counts = {"messages": 0, "reports": 0, "failed": 0, "kept": 0}
    try:
        imap.login(settings["user"], settings["password"])
        status, _ = imap.select(settings["mailbox"])
        if status != "OK":
            raise RuntimeError(f"cannot select {settings['mailbox']}")
        status, data = imap.uid("SEARCH", None, "UNDELETED", "UNKEYWORD", KEPT)
        uids = (data[0] or b"").split()[:limit] if status == "OK" else []
        for uid in uids:
            status, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched or [] if isinstance(item, tuple)), None)
            if status != "OK" or raw is None:
                counts["failed"] += 1
                continue
            try:
                result = bounces.process_message(store, config, raw, [])
            except Exception:  # the store: leave the message for the next poll
                log.exception("bounce mailbox: processing message %s failed", uid)
                counts["failed"] += 1
                continue
            if result["what"] == "other":  # not ours to throw away
                counts["kept"] += 1
                imap.uid("STORE", uid, "+FLAGS", f"({KEPT})")
                continue
            counts["messages"] += 1
            counts["reports"] += len(result["reports"])
            imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        if counts["messages"]:
            imap.expunge()
    finally:
        with contextlib.suppress(Exception):  # the connection may already be gone
            imap.logout()
    return counts
