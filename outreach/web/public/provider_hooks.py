"""Public provider webhooks for bounces and complaints (verified in the service)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from outreach.campaigns.bounces import providers
from outreach.web.api.auth import public
from outreach.web.common import config, store
from outreach.web.openapi import operation

bp = Blueprint("provider_webhooks", __name__)
_PUBLIC: dict[str, Any] = {"responses": {200: "application/json"}, "errors": (401, 403, 422),
                           "auth": False, "tag": "webhooks"}


@bp.post("/webhooks/ses")
@public
@operation("Amazon SES bounces/complaints through SNS (signature v1/v2)", **_PUBLIC)
def ses() -> Any:
    return jsonify(providers.handle_ses(store(), config(), request.get_data()))


@bp.post("/webhooks/sendgrid")
@public
@operation("SendGrid event webhook (ECDSA signed)", **_PUBLIC)
def sendgrid() -> Any:
    return jsonify(providers.handle_sendgrid(
        store(), config(), request.get_data(),
        request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
        request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")))


@bp.post("/webhooks/mailgun")
@public
@operation("Mailgun webhook (HMAC signed)", **_PUBLIC)
def mailgun() -> Any:
    return jsonify(providers.handle_mailgun(store(), config(), request.get_data()))


@bp.post("/webhooks/postmark")
@public
@operation("Postmark bounce/spam-complaint webhook (Basic auth)", **_PUBLIC)
def postmark() -> Any:
    return jsonify(providers.handle_postmark(store(), config(), request.get_data(),
                                         request.headers.get("Authorization", "")))
