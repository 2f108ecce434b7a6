"""CSV exports: list members, leads (with the leads filters); ``stream_csv`` streams a
campaign's recipients too (``outreach.campaigns.recipients``).

Streamed: each is a generator of CSV lines that pages through the store with the same
services as the JSON endpoints, so memory stays flat whatever the size. Cells that a
spreadsheet would run as a formula (``= + - @``, tab, CR) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

from outreach.people import lists, records
from outreach.store import Store

PAGE = 500
LEAD_COLUMNS = ("id", "email", "first_name", "last_name", "job_title", "company", "phone",
                "mobile_phone", "street", "city", "state", "postal_code", "country", "topic",
                "consent", "consent_status", "source", "latest_source", "status", "score",
                "created_at", "updated_at")
MEMBER_COLUMNS = ("id", "type", "email", "first_name", "last_name", "company", "job_title",
                  "consent", "status", "score", "account_id")


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


def stream_csv(columns: tuple[str, ...],
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
    return stream_csv(MEMBER_COLUMNS,
                      lambda cursor: lists.list_members(store, list_id, limit=PAGE, cursor=cursor))


def leads_csv(store: Store, *, list_id: str | None = None, status: str | None = None,
              email: str | None = None) -> Iterator[str]:
    if list_id:
        lists.get_list(store, list_id)
    return stream_csv(LEAD_COLUMNS, lambda cursor: records.find_leads(
        store, limit=PAGE, cursor=cursor, list_id=list_id, status=status, email=email))
