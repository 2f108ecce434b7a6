"""Follow-up tasks: the task list, completing a task, due reminders and the daily digest.

Tasks are activities of type ``task`` (``sales/activities.py``). Open tasks are in
``tasks:open`` and ``tasks:open:<owner>`` scored by due time, done ones in
``tasks:done[:<owner>]`` scored by completion time, and every open task with its reminder
still to come in ``tasks:remind``.

Reminders go out at most once per task and due time: ``claim_due.lua`` takes the due
members out of ``tasks:remind`` and sets ``tasks:reminded['<id>|<due>']`` (HSETNX) in one
step before anything is sent, so two beats, a rerun or a worker restart never send a second
one. (A crash between claim and send loses that one reminder: never twice beats at least
once for a nudge.) Moving the due time schedules a new reminder for the new time.
The digest lists each owner's overdue open tasks once per UTC day, from
``task_digest_hour``, claimed the same way (``tasks:digests['<day>|<owner>']``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, NotFound
from outreach.mail import dkim
from outreach.mail.notice import build_notice
from outreach.platform import webhooks
from outreach.platform.paging import load_hashes, walk_by_rank
from outreach.sales.activities import activity_view
from outreach.store import Store

log = logging.getLogger(__name__)

_CONSOLE_PATHS = {"lead": "leads", "contact": "contacts", "account": "accounts",
                  "opportunity": "opportunities"}


def find_tasks(store: Store, *, owner: str | None = None, status: str = "open",
               due_before: float | None = None, limit: int = 50,
               cursor: str | None = None) -> dict[str, Any]:
    """Open tasks by due time (soonest first) or done ones (latest first)."""
    keys = store.keys
    if status == "open":
        open_key = keys.tasks_open(owner or "")
        high = f"({due_before}" if due_before is not None else "+inf"

        def read(offset: int, count: int) -> list[str]:
            return store.r.zrangebyscore(open_key, "-inf", high, start=offset, num=count)

        def load(ids: list[str]) -> list[dict[str, Any] | None]:
            rows = load_hashes(store, keys.activity, ids)
            return [activity_view(i, h) if h else None for i, h in zip(ids, rows, strict=True)]
    else:
        done_key = keys.tasks_done(owner or "")

        def read(offset: int, count: int) -> list[str]:
            return store.r.zrevrange(done_key, offset, offset + count - 1)

        def load(ids: list[str]) -> list[dict[str, Any] | None]:
            rows = load_hashes(store, keys.activity, ids)
            return [activity_view(i, h)
                    if h and (due_before is None or float(h.get("due_at") or 0) < due_before) else None
                    for i, h in zip(ids, rows, strict=True)]

    return walk_by_rank(read, load, limit=limit, cursor=cursor,
                        size=limit if status == "open" else max(limit, 100))


def tasks_of(store: Store, owner: str, *, open_limit: int = 100, done_limit: int = 20
             ) -> dict[str, Any]:
    """The console's "my tasks": ``owner``'s open tasks (soonest due first) and the latest
    done ones, each task's record named (``record["name"]``: a person's name or address, an
    account's name, an opportunity's topic; ``None`` when the record is gone)."""
    from outreach.sales.owners import record_key

    found = {"open": find_tasks(store, owner=owner, status="open", limit=open_limit),
             "done": find_tasks(store, owner=owner, status="done", limit=done_limit)}
    tasks = found["open"]["items"] + found["done"]["items"]
    if tasks:
        pipe = store.r.pipeline(transaction=False)
        for task in tasks:
            record = task["record"]
            pipe.hmget(record_key(store, record["kind"], record["id"]),
                       ("first_name", "last_name", "email", "name", "topic"))
        for task, (first, last, email, name, topic) in zip(tasks, pipe.execute(), strict=True):
            person = " ".join(part for part in (first, last) if part)
            task["record"] = {**task["record"], "name": person or email or name or topic or None}
    return found


def complete_task(store: Store, task_id: str, by: str) -> dict[str, Any]:
    """Mark a task done, recording who and when; done again: as it was."""
    keys = store.keys
    key = keys.activity(task_id)
    h = store.r.hgetall(key)
    if not h:
        raise NotFound(f"No task {task_id!r}.")
    if h.get("type") != "task":
        raise Invalid("Validation failed.", {"id": ["Not a task."]})
    if h.get("status") == "done":
        return activity_view(task_id, h)
    now = time.time()
    done = {"status": "done", "done_at": str(int(now)), "done_by": by,
            "updated_at": str(int(now))}
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping=done)
    pipe.zrem(keys.tasks_open(), task_id)
    pipe.zrem(keys.task_reminders, task_id)
    pipe.zadd(keys.tasks_done(), {task_id: now})
    if h.get("owner"):
        pipe.zrem(keys.tasks_open(h["owner"]), task_id)
        pipe.zadd(keys.tasks_done(h["owner"]), {task_id: now})
    pipe.execute()
    return activity_view(task_id, {**h, **done})


def _message(config: Config, to: str, subject: str, text: str) -> Message:
    return build_notice(from_email=config.from_email, to_email=to, subject=subject, text=text,
                        dkim=dkim.from_config(config))


def _record_url(config: Config, h: dict[str, str]) -> str:
    ref = (h.get("refs") or "").split(",")[0]
    kind, _, record_id = ref.partition(":")
    return f"{config.base_url.rstrip('/')}/console/{_CONSOLE_PATHS.get(kind, kind)}/{record_id}"


def send_due_reminders(store: Store, config: Config, messenger: Any,
                       now: float | None = None, limit: int = 200) -> int:
    """One reminder email to the owner of every open task that fell due; how many went."""
    keys = store.keys
    now = time.time() if now is None else now
    claimed: list[str] = store.run("claim_due", keys=[keys.task_reminders, keys.task_reminded],
                                   args=[now, limit, int(now)])
    sent = 0
    for claim in claimed:
        task_id = claim.split("|", 1)[0]
        h = store.r.hgetall(keys.activity(task_id))
        if not h or h.get("status") != "open" or not h.get("owner"):
            continue
        view = activity_view(task_id, h)
        text = (f"Your task is due: {h.get('subject')}\n\nDue: {view['due_at']}\n"
                f"Record: {_record_url(config, h)}\n\n{h.get('body') or ''}\n")
        try:
            messenger.send(_message(config, h["owner"], f"Task due: {h.get('subject')}", text),
                           config.from_email, h["owner"])
            store.r.hset(keys.task_reminded, claim, f"sent:{int(time.time())}")
            sent += 1
        except Exception as exc:  # noqa: BLE001 - claimed: never retried (at most once)
            log.warning("task reminder %s to %s not sent: %s", task_id, h["owner"], exc)
            store.r.hset(keys.task_reminded, claim, f"failed:{int(time.time())}:{exc}"[:300])
        webhooks.emit(store, "task.due", {"task": view})
    return sent


def send_digests(store: Store, config: Config, messenger: Any, now: float | None = None) -> int:
    """Each owner's overdue open tasks, once per UTC day from ``task_digest_hour``."""
    keys = store.keys
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, UTC)
    if today.hour < config.task_digest_hour:
        return 0
    day = today.strftime("%Y-%m-%d")
    finished = f"{day}|*"  # set once every owner's digest of the day was claimed
    if store.r.hexists(keys.task_digests, finished):
        return 0
    ids = store.r.zrangebyscore(keys.tasks_open(), "-inf", f"({now}")
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task_id, h in zip(ids, load_hashes(store, keys.activity, ids), strict=True):
        if h and h.get("owner") and h.get("status") == "open":
            by_owner[h["owner"]].append({**activity_view(task_id, h), "_url": _record_url(config, h)})
    sent = 0
    for owner, tasks in sorted(by_owner.items()):
        if not store.r.hsetnx(keys.task_digests, f"{day}|{owner}", str(int(now))):
            continue
        lines = [f"- {t['subject']} (due {t['due_at']}) {t['_url']}" for t in tasks]
        text = f"You have {len(tasks)} overdue task(s) on {day}:\n\n" + "\n".join(lines) + "\n"
        try:
            messenger.send(_message(config, owner, f"{len(tasks)} overdue task(s)", text),
                           config.from_email, owner)
            sent += 1
        except Exception as exc:  # noqa: BLE001 - claimed for the day: not retried
            log.warning("task digest to %s not sent: %s", owner, exc)
    store.r.hset(keys.task_digests, finished, str(int(now)))
    return sent

