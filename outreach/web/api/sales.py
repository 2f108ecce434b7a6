"""Sales endpoints: activities, timelines, tasks, owners, the pipeline, webhooks."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from outreach.people import records
from outreach.platform import webhooks
from outreach.sales import accounts, activities
from outreach.sales import tasks as sales_tasks
from outreach.sales.owners import PLURALS, checked_owner, normal_owner_query, set_owner
from outreach.sales.pipeline import pipeline
from outreach.schemas.common import PageQuery, page_of
from outreach.schemas.crm import Account, AccountPatch, Pipeline
from outreach.schemas.people import Contact, ContactPatch
from outreach.schemas.sales import (
    Activity,
    ActivityIn,
    ActivityPatch,
    ActivityQuery,
    Deliveries,
    Redelivered,
    TaskQuery,
    Timeline,
    TimelineQuery,
    Webhook,
    WebhookEvent,
    WebhookIn,
    WebhookPatch,
)
from outreach.web.api.auth import access, caller, caller_user, require_api_key
from outreach.web.common import config, load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("sales", __name__)
require_api_key(bp)

_RECORDS = "<any(leads,contacts,accounts,opportunities):plural>"
ActivityPage = page_of(Activity)
WebhookPage = page_of(Webhook)


@bp.post(f"/api/v1/{_RECORDS}/<record_id>/activities")
@access("people", "write")
@operation("Log an activity (note, call, meeting, email, task) on a record", body=ActivityIn,
           responses={201: Activity}, errors=(404, 422), tag="sales")
def post_activity(plural: str, record_id: str) -> Any:
    data = load_body(ActivityIn())
    activity = activities.create_activity(store(), PLURALS[plural], record_id, data, caller(),
                                          caller_user())
    return jsonify(Activity().dump(activity)), 201


@bp.get(f"/api/v1/{_RECORDS}/<record_id>/activities")
@access("people", "read")
@operation("A record's activities, newest first", query=ActivityQuery,
           responses={200: ActivityPage}, errors=(404,), tag="sales")
def get_activities(plural: str, record_id: str) -> Any:
    q = load_query(ActivityQuery())
    result = activities.record_activities(store(), PLURALS[plural], record_id, limit=q["limit"],
                                          type_=q.get("type"), cursor=q["cursor"])
    return jsonify(ActivityPage().dump(result))


@bp.get(f"/api/v1/{_RECORDS}/<record_id>/timeline")
@access("people", "read")
@operation("Activities and system events of a record, newest first", query=TimelineQuery,
           responses={200: Timeline}, errors=(404,), tag="sales")
def get_timeline(plural: str, record_id: str) -> Any:
    q = load_query(TimelineQuery())
    return jsonify(activities.timeline(store(), PLURALS[plural], record_id, q["limit"]))


@bp.patch("/api/v1/activities/<activity_id>")
@access("people", "write")
@operation("Edit one's own activity", body=ActivityPatch, responses={200: Activity},
           errors=(403, 404, 422), tag="sales")
def patch_activity(activity_id: str) -> Any:
    changes = load_body(ActivityPatch())
    result = activities.update_activity(store(), activity_id, changes, caller(), caller_user())
    return jsonify(Activity().dump(result))


@bp.delete("/api/v1/activities/<activity_id>")
@access("people", "write")
@operation("Delete one's own activity", responses={204: None}, errors=(403, 404), tag="sales")
def delete_activity(activity_id: str) -> Any:
    activities.delete_activity(store(), activity_id, caller(), caller_user())
    return "", 204


@bp.get("/api/v1/activities/<activity_id>")
@access("people", "read")
@operation("Read an activity", responses={200: Activity}, errors=(404,), tag="sales")
def get_activity(activity_id: str) -> Any:
    return jsonify(Activity().dump(activities.get_activity(store(), activity_id)))


@bp.get("/api/v1/tasks")
@access("people", "read")
@operation("Tasks: open by due time, or done (latest first); owner=me is the key's user",
           query=TaskQuery, responses={200: ActivityPage}, errors=(422,), tag="sales")
def get_tasks() -> Any:
    q = load_query(TaskQuery())
    due_before = q["due_before"].timestamp() if q.get("due_before") else None
    result = sales_tasks.find_tasks(store(), owner=normal_owner_query(q.get("owner"), caller_user()),
                                  status=q["status"], due_before=due_before, limit=q["limit"],
                                  cursor=q["cursor"])
    return jsonify(ActivityPage().dump(result))


@bp.post("/api/v1/tasks/<task_id>/done")
@access("people", "write")
@operation("Complete a task (records who and when)", responses={200: Activity},
           errors=(404, 422), tag="sales")
def post_task_done(task_id: str) -> Any:
    return jsonify(Activity().dump(sales_tasks.complete_task(store(), task_id, caller())))


@bp.get("/api/v1/pipeline")
@access("opportunities", "read")
@operation("Open opportunities by stage, forecast by expected close month, won, lost by reason",
           responses={200: Pipeline}, tag="sales")
def get_pipeline() -> Any:
    return jsonify(Pipeline().dump(pipeline(store())))


@bp.patch("/api/v1/accounts/<account_id>")
@access("people", "write")
@operation("Edit an account (name, owner)", body=AccountPatch, responses={200: Account},
           errors=(404, 422), tag="sales")
def patch_account(account_id: str) -> Any:
    changes = load_body(AccountPatch())
    return jsonify(Account().dump(accounts.update_account(store(), account_id, changes, caller())))


@bp.patch("/api/v1/contacts/<contact_id>")
@access("people", "write")
@operation("Edit a contact: its owner, its profile (time zone, ...)", body=ContactPatch,
           responses={200: Contact}, errors=(404, 422), tag="sales")
def patch_contact(contact_id: str) -> Any:
    changes = load_body(ContactPatch())
    owner = changes.pop("owner", None)
    if owner:  # checked first: a bad owner changes nothing
        checked_owner(store(), owner)
    contact = records.update_contact(store(), contact_id, changes)
    if owner:
        set_owner(store(), "contact", contact_id, owner, caller())
        contact = records.get_contact(store(), contact_id)
    return jsonify(Contact().dump(contact))


# ------------------------------------------------------------------ webhooks

_DELIVERY = {
    "post": {
        "summary": "An event delivered to the subscribed URL (retried after 5 s, 30 s, 2 min, "
                   "10 min, then hourly until a 2xx)",
        "parameters": [
            {"in": "header", "name": "Outreach-Signature", "required": True,
             "description": 't=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>',
             "schema": {"type": "string"}},
            {"in": "header", "name": "Outreach-Event-Id", "required": True,
             "description": "the event's id (the same on every attempt): deduplicate on it",
             "schema": {"type": "string"}},
            {"in": "header", "name": "Outreach-Event", "schema": {"type": "string"}},
        ],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": WebhookEvent}}},
        "responses": {"2XX": {"description": "Received; anything else is retried"}},
    },
}


@bp.post("/api/v1/webhooks")
@access("settings", "write")
@operation("Subscribe a URL to events (signed deliveries); the secret is shown in this answer",
           body=WebhookIn, responses={201: Webhook}, errors=(422,), tag="webhooks",
           extra={"callbacks": {"event": {"{$request.body#/url}": _DELIVERY}}})
def post_webhook() -> Any:
    data = load_body(WebhookIn())
    return jsonify(Webhook().dump(webhooks.create_webhook(store(), config(), data, caller()))), 201


@bp.get("/api/v1/webhooks")
@access("settings", "read")
@operation("Webhooks", query=PageQuery, responses={200: WebhookPage}, tag="webhooks")
def get_webhooks() -> Any:
    q = load_query(PageQuery())
    return jsonify(WebhookPage().dump(webhooks.find_webhooks(store(), limit=q["limit"],
                                                             cursor=q["cursor"])))


@bp.get("/api/v1/webhooks/<webhook_id>")
@access("settings", "read")
@operation("Read a webhook", responses={200: Webhook}, errors=(404,), tag="webhooks")
def get_webhook(webhook_id: str) -> Any:
    return jsonify(Webhook().dump(webhooks.get_webhook(store(), webhook_id)))


@bp.patch("/api/v1/webhooks/<webhook_id>")
@access("settings", "write")
@operation("Edit a webhook (url, events, secret, active: true re-enables)", body=WebhookPatch,
           responses={200: Webhook}, errors=(404, 422), tag="webhooks")
def patch_webhook(webhook_id: str) -> Any:
    changes = load_body(WebhookPatch())
    return jsonify(Webhook().dump(webhooks.update_webhook(store(), config(), webhook_id, changes)))


@bp.delete("/api/v1/webhooks/<webhook_id>")
@access("settings", "write")
@operation("Delete a webhook", responses={204: None}, errors=(404,), tag="webhooks")
def delete_webhook(webhook_id: str) -> Any:
    webhooks.delete_webhook(store(), webhook_id)
    return "", 204


@bp.get("/api/v1/webhooks/<webhook_id>/deliveries")
@access("settings", "read")
@operation("Delivery attempts, newest first", query=TimelineQuery, responses={200: Deliveries},
           errors=(404,), tag="webhooks")
def get_deliveries(webhook_id: str) -> Any:
    q = load_query(TimelineQuery())
    return jsonify(Deliveries().dump(webhooks.deliveries(store(), webhook_id, q["limit"])))


@bp.post("/api/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver")
@access("settings", "write")
@operation("Attempt a delivery again now", responses={202: Redelivered}, errors=(404,),
           tag="webhooks")
def post_redeliver(webhook_id: str, delivery_id: str) -> Any:
    return jsonify(Redelivered().dump(webhooks.redeliver(store(), webhook_id, delivery_id))), 202
