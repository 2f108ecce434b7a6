"""Provider webhooks for bounces and complaints: SES (through SNS), SendGrid, Mailgun,
Postmark. Each request is verified before anything in it is believed; a bad signature is a
401/403 and changes nothing. Verified events go to the one processor
(``outreach.campaigns.bounces.processor``): by the signed token in our ``Message-ID`` when the
provider hands it back (campaign stats and the recipient's ledger outcome too), else by the
address alone (suppression, soft-bounce count, consent withdrawn on a complaint).

- SES/SNS: SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA) over the canonical
  string of the message; the certificate only from ``https://sns.<region>.amazonaws.com/…pem``,
  cached; ``TopicArn`` must be one of ``OUTREACH_SES_TOPIC_ARNS``; a SubscriptionConfirmation
  is confirmed by fetching its (equally checked) ``SubscribeURL``. ``FETCH`` is replaceable.
- SendGrid: ECDSA P-256 / SHA-256 over timestamp + raw body
  (``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``), key base64 DER.
- Mailgun: HMAC-SHA256(signing key, timestamp + token); a token is accepted once and a
  timestamp more than 5 minutes away is refused.
- Postmark: HTTP Basic auth.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from outreach.campaigns.bounces import processor as bounces
from outreach.config import Config
from outreach.errors import Forbidden, Invalid, ServiceError
from outreach.mail import verp
from outreach.mail.reports import BLOCKED, COMPLAINT, HARD, SOFT, Report, classify_status
from outreach.normalize import InvalidEmail, checked_email, email_hash
from outreach.people.consent import withdraw_consent_of
from outreach.people.suppressions import suppress
from outreach.store import Store

MAX_SKEW_SECONDS = 300
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


def _fetch(url: str) -> bytes:  # pragma: no cover - the network; tests replace FETCH
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - https checked
        return response.read()


FETCH: Callable[[str], bytes] = _fetch
_CERTS: dict[str, Any] = {}


# ------------------------------------------------------------------ applying events


def apply_event(store: Store, config: Config, *, kind: str, email: str, status: str = "",
                diagnostic: str = "", message_id: str = "", event_id: str = "",
                found: tuple[str, str] | None = None) -> str:
    """One verified provider event; ``found`` is its (campaign, ref) when known otherwise
    than by ``message_id``."""
    if found is None and message_id:
        found = verp.read_message_id(config.secret_keys, message_id)
    report_id = hashlib.sha256(f"{event_id or message_id}|{email.lower()}|{kind}".encode()
                               ).hexdigest()[:32]
    if found:
        report = Report(kind=kind, recipient=email, status=status, diagnostic=diagnostic[:500],
                        campaign_id=found[0], ref=found[1], report_id=report_id)
        outcome = bounces.apply_report(store, config, report)
        if outcome != "unknown":
            return outcome
    return _apply_address(store, config, kind, email, f"{status} {diagnostic}".strip(), report_id)


def _apply_address(store: Store, config: Config, kind: str, raw_email: str, reply: str,
                   report_id: str) -> str:
    try:
        email = checked_email(raw_email)
    except InvalidEmail:
        return "unknown"
    keys, now = store.keys, int(time.time())
    if not store.r.set(keys.bounce_seen(report_id), "1", nx=True, ex=bounces.SEEN_SECONDS):
        return "duplicate"
    if kind == BLOCKED:
        return "recorded"
    if kind == SOFT:
        zkey = keys.soft_bounces(email_hash(email))
        pipe = store.r.pipeline(transaction=True)
        pipe.zadd(zkey, {report_id: now})
        pipe.zremrangebyscore(zkey, "-inf", now - bounces.SOFT_WINDOW_SECONDS)
        pipe.expire(zkey, bounces.SOFT_WINDOW_SECONDS)
        pipe.zcard(zkey)
        if pipe.execute()[-1] < config.soft_bounce_limit:
            return "recorded"
    info = {"reason": "complaint" if kind == COMPLAINT else "hard_bounce", "at": now,
            "campaign_id": None, "reply": reply[:500] or None}
    if kind == COMPLAINT:
        suppress(store, email, "complaint", info)
        withdraw_consent_of(store, email, how="unsubscribe")
        return "suppressed"
    suppress(store, email, "bounced", info)
    return "suppressed"


# ------------------------------------------------------------------ SES through SNS

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}


def _sns_url_ok(url: str, pem: bool) -> bool:
    parts = urlsplit(url or "")
    return (parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or ""))
            and parts.port in (None, 443) and (not pem or parts.path.endswith(".pem")))


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    fields = _SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise Invalid("Validation failed.", {"Type": ["not an SNS message type"]})
    out = []
    for name in fields:
        if name == "Subject" and message.get(name) is None:
            continue
        out.append(f"{name}\n{message.get(name, '')}\n")
    return "".join(out).encode()


def verify_sns(message: dict[str, Any]) -> None:
    """Raise ``Forbidden`` unless ``message`` carries a valid SNS signature."""
    version = str(message.get("SignatureVersion") or "")
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        raise Forbidden("unsupported SNS SignatureVersion")
    url = str(message.get("SigningCertURL") or message.get("SigningCertUrl") or "")
    if not _sns_url_ok(url, pem=True):
        raise Forbidden("SigningCertURL is not an https SNS host on amazonaws.com")
    key = _CERTS.get(url)
    if key is None:
        try:
            key = x509.load_pem_x509_certificate(FETCH(url)).public_key()
        except Exception as exc:  # noqa: BLE001 - any failure is a refusal
            raise Forbidden(f"cannot load the signing certificate: {type(exc).__name__}") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise Forbidden("the signing certificate has no RSA key")
        if len(_CERTS) > 32:
            _CERTS.clear()
        _CERTS[url] = key
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise Forbidden("SNS signature does not verify") from exc


def handle_ses(store: Store, config: Config, body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise Invalid("Validation failed.", {"body": ["not JSON"]}) from exc
    if not isinstance(message, dict):
        raise Invalid("Validation failed.", {"body": ["not an SNS message"]})
    # the topic first: an unknown topic is refused before anything is fetched for it (the
    # signing certificate's URL is the sender's to choose, within the SNS hosts)
    if message.get("TopicArn") not in config.ses_topic_arns:
        raise Forbidden("unexpected TopicArn")
    verify_sns(message)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL") or "")
        if not _sns_url_ok(url, pem=False):
            raise Forbidden("SubscribeURL is not an https SNS host")
        FETCH(url)
        return {"confirmed": True}
    if kind != "Notification":
        return {"ignored": kind}
    try:
        notification = json.loads(message.get("Message") or "")
    except ValueError as exc:
        raise Invalid("Validation failed.", {"Message": ["not JSON"]}) from exc
    event = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    message_id = ""
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == "message-id":
            message_id = str(header.get("value") or "")
    message_id = message_id or str((mail.get("commonHeaders") or {}).get("messageId") or "")
    outcomes = []
    if event == "Bounce":
        bounce = notification.get("bounce") or {}
        btype = bounce.get("bounceType")
        for rcpt in bounce.get("bouncedRecipients") or []:
            status, diag = str(rcpt.get("status") or ""), str(rcpt.get("diagnosticCode") or "")
            kind_ = (classify_status(status, diag) or SOFT) if status else (
                HARD if btype == "Permanent" else SOFT)
            if btype != "Permanent" and kind_ == HARD:
                kind_ = SOFT
            outcomes.append(apply_event(store, config, kind=kind_, email=str(rcpt.get("emailAddress")),
                                        status=status, diagnostic=diag, message_id=message_id,
                                        event_id=str(bounce.get("feedbackId") or message.get("MessageId"))))
    elif event == "Complaint":
        complaint = notification.get("complaint") or {}
        for rcpt in complaint.get("complainedRecipients") or []:
            event_id = str(complaint.get("feedbackId") or message.get("MessageId"))
            outcomes.append(apply_event(store, config, kind=COMPLAINT,
                                        email=str(rcpt.get("emailAddress")),
                                        message_id=message_id, event_id=event_id))
    return {"outcomes": outcomes}


# ------------------------------------------------------------------ SendGrid


def verify_sendgrid(config: Config, body: bytes, signature: str, timestamp: str) -> None:
    if not config.sendgrid_webhook_public_key:
        raise Forbidden("the SendGrid webhook is not configured")
    try:
        key = serialization.load_der_public_key(base64.b64decode(config.sendgrid_webhook_public_key))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Forbidden("OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
        key.verify(base64.b64decode(signature or "", validate=True),
                   (timestamp or "").encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise Unauthorized("SendGrid signature does not verify") from exc


def handle_sendgrid(store: Store, config: Config, body: bytes, signature: str,
                    timestamp: str) -> dict[str, Any]:
    verify_sendgrid(config, body, signature, timestamp)
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise Invalid("Validation failed.", {"body": ["not JSON"]}) from exc
    outcomes = []
    for event in events if isinstance(events, list) else []:
        name = event.get("event")
        if name == "spamreport":
            kind = COMPLAINT
        elif name == "bounce":
            kind = BLOCKED if event.get("type") == "blocked" else (
                classify_status(str(event.get("status") or "5.0.0"), str(event.get("reason") or "")) or HARD)
        elif name == "deferred":
            kind = SOFT
        else:
            continue
        outcomes.append(apply_event(
            store, config, kind=kind, email=str(event.get("email") or ""),
            status=str(event.get("status") or ""), diagnostic=str(event.get("reason") or ""),
            message_id=str(event.get("smtp-id") or ""), event_id=str(event.get("sg_event_id") or "")))
    return {"outcomes": outcomes}


# ------------------------------------------------------------------ Mailgun


def handle_mailgun(store: Store, config: Config, body: bytes) -> dict[str, Any]:
    if not config.mailgun_signing_key:
        raise Forbidden("the Mailgun webhook is not configured")
    try:
        payload = json.loads(body)
        sig = payload["signature"]
        timestamp, token, signature = str(sig["timestamp"]), str(sig["token"]), str(sig["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("no Mailgun signature") from exc
    expected = hmac.new(config.mailgun_signing_key.encode(), (timestamp + token).encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Unauthorized("Mailgun signature does not verify")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
        raise Unauthorized("Mailgun timestamp is more than 5 minutes away")
    if not store.r.set(store.keys.bounce_seen("mg:" + hashlib.sha256(token.encode()).hexdigest()[:32]),
                       "1", nx=True, ex=2 * MAX_SKEW_SECONDS):
        raise Unauthorized("Mailgun token replayed")
    data = payload.get("event-data") or {}
    event, severity = data.get("event"), data.get("severity")
    delivery = data.get("delivery-status") or {}
    status = str(delivery.get("enhanced-code") or "")
    diag = f"{delivery.get('code') or ''} {delivery.get('message') or delivery.get('description') or ''}"
    if event == "complained":
        kind = COMPLAINT
    elif event == "failed" and severity == "permanent":
        kind = classify_status(status or "5.0.0", diag.strip()) or HARD
        if data.get("reason") in ("suppress-bounce", "suppress-complaint", "suppress-unsubscribe"):
            kind = BLOCKED  # Mailgun dropped it for its own list; says nothing new
    elif event == "failed":
        kind = SOFT
    else:
        return {"outcomes": []}
    headers = (data.get("message") or {}).get("headers") or {}
    outcome = apply_event(store, config, kind=kind, email=str(data.get("recipient") or ""),
                          status=status, diagnostic=diag.strip(),
                          message_id=f"<{str(headers.get('message-id') or '').strip('<>')}>",
                          event_id=str(data.get("id") or token))
    return {"outcomes": [outcome]}


# ------------------------------------------------------------------ Postmark


def verify_postmark(config: Config, authorization: str) -> None:
    if not (config.postmark_webhook_user and config.postmark_webhook_password):
        raise Forbidden("the Postmark webhook is not configured")
    scheme, _, value = (authorization or "").partition(" ")
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Unauthorized("Postmark basic auth required") from exc
    ok = hmac.compare_digest(user.encode(), config.postmark_webhook_user.encode()) & \
        hmac.compare_digest(password.encode(), config.postmark_webhook_password.encode())
    if scheme.lower() != "basic" or not ok:
        raise Unauthorized("Postmark basic auth does not match")


_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "AutoResponder"}


def handle_postmark(store: Store, config: Config, body: bytes, authorization: str) -> dict[str, Any]:
    verify_postmark(config, authorization)
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise Invalid("Validation failed.", {"body": ["not JSON"]}) from exc
    record = event.get("RecordType") if isinstance(event, dict) else None
    if record == "SpamComplaint":
        kind = COMPLAINT
    elif record == "Bounce":
        btype = event.get("Type")
        if btype == "AutoResponder":
            return {"outcomes": []}
        kind = HARD if btype in _POSTMARK_HARD else SOFT if btype in _POSTMARK_SOFT else BLOCKED
    else:
        return {"outcomes": []}
    outcome = apply_event(store, config, kind=kind, email=str(event.get("Email") or ""),
                          diagnostic=str(event.get("Details") or event.get("Description") or ""),
                          found=_postmark_recipient(config, event),
                          event_id=str(event.get("ID") or event.get("MessageID") or ""))
    return {"outcomes": [outcome]}


def _postmark_recipient(config: Config, event: dict[str, Any]) -> tuple[str, str] | None:
    """(campaign, ref) of a Postmark event. Its ``MessageID`` is Postmark's own; our signed
    token comes back in ``Metadata.outreach`` (the ``X-PM-Metadata-outreach`` header the send
    path adds when a relay is Postmark's), and our headers are quoted in the bounce dump
    (``Content``, when the webhook includes it): a Message-ID token of ours or a VERP
    return path there."""
    metadata = event.get("Metadata")
    if isinstance(metadata, dict) and metadata.get("outreach"):
        found = verp.read_token(config.secret_keys, str(metadata["outreach"]))
        if found:
            return found
    return verp.find_token(config.secret_keys, str(event.get("Content") or ""))
