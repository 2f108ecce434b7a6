"""CSV exports: list members, leads (with the leads filters), campaign recipients.

Streamed: each is a generator of CSV lines that pages through the store with the same
services as the JSON endpoints, so memory stays flat whatever the size. Cells that a
spreadsheet would run as a formula (``= + - @``, tab, CR) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

from outreach.campaigns import legacy as campaigns
from outreach.people import lists
from outreach.people import records as people
from outreach.store import Store

PAGE = 500
LEAD_COLUMNS = ("id", "email", "first_name", "last_name", "job_title", "company", "phone",
                "mobile_phone", "street", "city", "state", "postal_code", "country", "topic",
                "consent", "consent_status", "source", "latest_source", "status", "score",
                "created_at", "updated_at")
MEMBER_COLUMNS = ("id", "type", "email", "first_name", "last_name", "company", "job_title",
                  "consent", "status", "score", "account_id")
RECIPIENT_COLUMNS = ("email", "person", "status", "at", "error")


def safe_cell(value: Any) -> str:
    """A cell as text, defused against CSV formula injection (OWASP)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _stream(columns: tuple[str, ...],
            pages: Callable[[str | None], dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    cursor: str | None = None
    while True:
        result = pages(cursor)
        for item in result["items"]:
            writer.writerow([safe_cell(item.get(c)) for c in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        cursor = result.get("next_cursor")
        if not cursor:
            return


def list_members_csv(store: Store, list_id: str) -> Iterator[str]:
    lists.get_list(store, list_id)  # 404 before the first byte
    return _stream(MEMBER_COLUMNS,
                   lambda cursor: lists.list_members(store, list_id, limit=PAGE, cursor=cursor))


def leads_csv(store: Store, *, list_id: str | None = None, status: str | None = None,
              email: str | None = None) -> Iterator[str]:
    if list_id:
        lists.get_list(store, list_id)
    return _stream(LEAD_COLUMNS, lambda cursor: people.find_leads(
        store, limit=PAGE, cursor=cursor, list_id=list_id, status=status, email=email))


def recipients_csv(store: Store, campaign_id: str, status: str | None = None) -> Iterator[str]:
    campaigns.recipients(store, campaign_id, status=status, limit=1)  # 404 / 422 up front

    def pages(cursor: str | None) -> dict[str, Any]:
        result = campaigns.recipients(store, campaign_id, status=status, limit=PAGE,
                                      cursor=cursor)
        for item in result["items"]:
            person = item.get("person")
            if isinstance(person, dict):
                item["person"] = f"{person.get('type')}:{person.get('id')}"
        return result

    return _stream(RECIPIENT_COLUMNS, pages)
