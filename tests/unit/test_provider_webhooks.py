"""Provider webhooks: SES/SNS, SendGrid, Mailgun, Postmark, with keys made here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.campaigns.bounces import providers as provider_webhooks

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
SNS_CERT = (x509.CertificateBuilder().subject_name(_name).issuer_name(_name)
            .public_key(SNS_KEY.public_key()).serial_number(1)
            .not_valid_before(dt.datetime(2020, 1, 1)).not_valid_after(dt.datetime(2040, 1, 1))
            .sign(SNS_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
SG_KEY = ec.generate_private_key(ec.SECP256R1())
SG_PUBLIC = base64.b64encode(SG_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
MG_KEY = "key-mailgun-signing-0123456789"


@pytest.fixture
def hooks(make_cenv: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return SNS_CERT if url.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"

    monkeypatch.setattr(provider_webhooks, "FETCH", fetch)
    provider_webhooks._CERTS.clear()
    with make_cenv(ses_topic_arns=(TOPIC,), sendgrid_webhook_public_key=SG_PUBLIC,
                   mailgun_signing_key=MG_KEY, postmark_webhook_user="pm",
                   postmark_webhook_password="pm-secret", bounce_domain="bounces.example") as env:
        list_id = env.leads("ann@example.org", "bob@example.org")
        env.campaign_id = env.launched([list_id])
        env.run(env.campaign_id)
        env.msgid = {rcpt: str(msg["Message-ID"]) for msg, _, rcpt in env.messenger.messages}
        env.fetched = fetched
        yield env


def _suppressed(env: Any, email: str) -> str | None:
    return env.store.r.hget(env.store.keys.suppressed, email)


def sns(message: dict[str, Any], version: str = "1", **fields: Any) -> dict[str, Any]:
    body = {"Type": "Notification", "MessageId": "m-1", "TopicArn": TOPIC,
            "Message": json.dumps(message), "Timestamp": "2026-12-01T10:00:00.000Z",
            "SignatureVersion": version, "SigningCertURL": CERT_URL, **fields}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    body["Signature"] = base64.b64encode(SNS_KEY.sign(
        provider_webhooks.sns_string_to_sign(body), padding.PKCS1v15(), algorithm)).decode()
    return body


def _ses_bounce(env: Any, email: str) -> dict[str, Any]:
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "feedbackId": f"fb-{email}",
                       "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1",
                                              "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
            "mail": {"messageId": "ses-1", "headers": [{"name": "Message-ID",
                                                        "value": env.msgid[email]}]}}


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_with_a_valid_signature_is_applied(hooks: Any, version: str) -> None:
    body = sns(_ses_bounce(hooks, "ann@example.org"), version)
    response = hooks.client.post("/webhooks/ses", data=json.dumps(body))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"outcomes": ["suppressed"]}
    assert _suppressed(hooks, "ann@example.org") == f"bounced:{hooks.campaign_id}"
    assert hooks.show(hooks.campaign_id)["stats"]["bounced"] == 1
    assert hooks.fetched == [CERT_URL]


@pytest.mark.parametrize("change", [
    lambda b: b.update(Message=b["Message"].replace("5.1.1", "5.1.2", 1)),
    lambda b: b.update(TopicArn=TOPIC + "x"),
    lambda b: b.update(Signature=("B" if b["Signature"][0] == "A" else "A") + b["Signature"][1:]),
])
def test_ses_tampered_messages_change_nothing(hooks: Any, change: Any) -> None:
    body = sns(_ses_bounce(hooks, "ann@example.org"))
    change(body)
    response = hooks.client.post("/webhooks/ses", data=json.dumps(body))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert _suppressed(hooks, "ann@example.org") is None


@pytest.mark.parametrize("url", [
    "http://sns.eu-west-1.amazonaws.com/c.pem", "https://sns.eu-west-1.amazonaws.com.evil.example/c.pem",
    "https://evil.example/sns.eu-west-1.amazonaws.com/c.pem", "https://s3.amazonaws.com/c.pem"])
def test_ses_certificates_only_from_sns_hosts(hooks: Any, url: str) -> None:
    body = sns(_ses_bounce(hooks, "ann@example.org"), SigningCertURL=url)
    assert hooks.client.post("/webhooks/ses", data=json.dumps(body)).status_code == 403
    assert hooks.fetched == []


def test_ses_unexpected_topic_even_when_signed_and_subscription_confirmation(hooks: Any) -> None:
    other = sns(_ses_bounce(hooks, "ann@example.org"), TopicArn="arn:aws:sns:eu-west-1:9:other")
    assert hooks.client.post("/webhooks/ses", data=json.dumps(other)).status_code == 403
    confirm_url = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
    body = sns({}, Type="SubscriptionConfirmation", Token="t", SubscribeURL=confirm_url)
    body["Message"] = "You have chosen to subscribe"
    body["Signature"] = base64.b64encode(SNS_KEY.sign(
        provider_webhooks.sns_string_to_sign(body), padding.PKCS1v15(), hashes.SHA1())).decode()
    response = hooks.client.post("/webhooks/ses", data=json.dumps(body))
    assert response.status_code == 200 and response.get_json() == {"confirmed": True}
    assert hooks.fetched[-1] == confirm_url


def test_ses_complaint_withdraws_consent(hooks: Any) -> None:
    message = {"notificationType": "Complaint",
               "complaint": {"feedbackId": "c1",
                             "complainedRecipients": [{"emailAddress": "bob@example.org"}]},
               "mail": {"headers": [{"name": "Message-ID", "value": hooks.msgid["bob@example.org"]}]}}
    response = hooks.client.post("/webhooks/ses", data=json.dumps(sns(message)))
    assert response.status_code == 200
    assert _suppressed(hooks, "bob@example.org").startswith("complaint")
    assert hooks.show(hooks.campaign_id)["stats"]["complained"] == 1
    assert hooks.lead_of("bob@example.org")["consent_status"] == "withdrawn"


def _sendgrid(body: bytes, timestamp: str = "1796170000") -> dict[str, str]:
    signature = SG_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def test_sendgrid_events(hooks: Any) -> None:
    body = json.dumps([
        {"email": "ann@example.org", "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 unknown", "smtp-id": hooks.msgid["ann@example.org"], "sg_event_id": "e1"},
        {"email": "bob@example.org", "event": "spamreport", "sg_event_id": "e2",
         "smtp-id": hooks.msgid["bob@example.org"]},
        {"email": "bob@example.org", "event": "open", "sg_event_id": "e3"},
    ]).encode()
    response = hooks.client.post("/webhooks/sendgrid", data=body, headers=_sendgrid(body))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"outcomes": ["suppressed", "suppressed"]}
    stats = hooks.show(hooks.campaign_id)["stats"]
    assert (stats["bounced"], stats["complained"]) == (1, 1)
    again = hooks.client.post("/webhooks/sendgrid", data=body, headers=_sendgrid(body))
    assert again.get_json() == {"outcomes": ["duplicate", "duplicate"]}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_sendgrid_any_changed_byte_fails(data: st.DataObject) -> None:
    from outreach.config import Config
    from outreach.errors import ServiceError

    config = Config(sendgrid_webhook_public_key=SG_PUBLIC)
    body = json.dumps([{"email": "ann@example.org", "event": "bounce", "status": "5.1.1"}]).encode()
    headers = _sendgrid(body)
    provider_webhooks.verify_sendgrid(config, body, headers["X-Twilio-Email-Event-Webhook-Signature"],
                                      headers["X-Twilio-Email-Event-Webhook-Timestamp"])
    pos = data.draw(st.integers(0, len(body) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[pos]))
    tampered = body[:pos] + bytes([new]) + body[pos + 1:]
    with pytest.raises(ServiceError) as info:
        provider_webhooks.verify_sendgrid(config, tampered,
                                          headers["X-Twilio-Email-Event-Webhook-Signature"],
                                          headers["X-Twilio-Email-Event-Webhook-Timestamp"])
    assert info.value.status == 401


def test_sendgrid_bad_signature_is_401_and_changes_nothing(hooks: Any) -> None:
    body = json.dumps([{"email": "ann@example.org", "event": "bounce", "status": "5.1.1"}]).encode()
    headers = _sendgrid(body, "1796170000")
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "1796170001"
    response = hooks.client.post("/webhooks/sendgrid", data=body, headers=headers)
    assert response.status_code == 401
    assert _suppressed(hooks, "ann@example.org") is None


def _mailgun(event: dict[str, Any], token: str = "tok-1", timestamp: int | None = None,
             key: str = MG_KEY) -> bytes:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": ts, "token": token, "signature": signature},
                       "event-data": event}).encode()


def test_mailgun_verified_once_and_fresh(hooks: Any) -> None:
    event = {"event": "failed", "severity": "permanent", "recipient": "ann@example.org", "id": "ev1",
             "delivery-status": {"code": 550, "message": "5.1.1 no such user", "enhanced-code": "5.1.1"},
             "message": {"headers": {"message-id": hooks.msgid["ann@example.org"].strip("<>")}}}
    body = _mailgun(event)
    response = hooks.client.post("/webhooks/mailgun", data=body)
    assert response.status_code == 200 and response.get_json() == {"outcomes": ["suppressed"]}
    assert hooks.show(hooks.campaign_id)["stats"]["bounced"] == 1
    assert hooks.client.post("/webhooks/mailgun", data=body).status_code == 401  # replayed token
    old = _mailgun({**event, "recipient": "bob@example.org"}, token="tok-2", timestamp=int(time.time()) - 600)
    assert hooks.client.post("/webhooks/mailgun", data=old).status_code == 401
    forged = _mailgun({**event, "recipient": "bob@example.org"}, token="tok-3", key="wrong")
    assert hooks.client.post("/webhooks/mailgun", data=forged).status_code == 401
    assert _suppressed(hooks, "bob@example.org") is None


def test_postmark_basic_auth(hooks: Any) -> None:
    body = json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "ID": 42,
                       "Email": "bob@example.org", "Details": "550 5.1.1 unknown user"}).encode()
    good = {"Authorization": "Basic " + base64.b64encode(b"pm:pm-secret").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"pm:wrong").decode()}
    assert hooks.client.post("/webhooks/postmark", data=body, headers=bad).status_code == 401
    assert hooks.client.post("/webhooks/postmark", data=body).status_code == 401
    assert _suppressed(hooks, "bob@example.org") is None
    response = hooks.client.post("/webhooks/postmark", data=body, headers=good)
    assert response.status_code == 200 and response.get_json() == {"outcomes": ["suppressed"]}
    assert _suppressed(hooks, "bob@example.org") == "bounced"
    items = {i["email"]: i for i in hooks.get("/api/v1/suppressions").get_json()["items"]}
    assert items["bob@example.org"]["reason"] == "hard_bounce"


_PM_AUTH = {"Authorization": "Basic " + base64.b64encode(b"pm:pm-secret").decode()}


def _postmark(hooks: Any, email: str, **fields: Any) -> Any:
    body = {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "ID": 4242,
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",  # Postmark's own id
            "Email": email, "Details": "smtp; 550 5.1.1 user unknown",
            "BouncedAt": "2026-12-05T13:28:10Z", **fields}
    return hooks.client.post("/webhooks/postmark", data=json.dumps(body), headers=_PM_AUTH)


def _bounced_through_the_processor(hooks: Any, email: str) -> None:
    shown = hooks.show(hooks.campaign_id)
    assert shown["stats"]["bounced"] == 1
    assert hooks.ledger(hooks.campaign_id)[email] == "bounced"
    assert _suppressed(hooks, email) == f"bounced:{hooks.campaign_id}"
    ref = "l:" + hooks.lead_of(email)["id"]
    events = hooks.store.r.lrange(hooks.store.keys.person_events(ref), 0, -1)
    assert [e.split("|")[:2] for e in events if e.startswith("bounce|")] == [["bounce", hooks.campaign_id]]


def test_a_postmark_bounce_finds_the_campaign_by_its_metadata(hooks: Any) -> None:
    token = hooks.msgid["bob@example.org"].split(".", 1)[1].split("@")[0]  # as the header has it
    response = _postmark(hooks, "bob@example.org", Metadata={"outreach": token})
    assert response.status_code == 200 and response.get_json() == {"outcomes": ["suppressed"]}
    _bounced_through_the_processor(hooks, "bob@example.org")
    again = _postmark(hooks, "bob@example.org", Metadata={"outreach": token})
    assert again.get_json() == {"outcomes": ["duplicate"]}
    assert hooks.show(hooks.campaign_id)["stats"]["bounced"] == 1


def test_a_postmark_bounce_finds_the_campaign_in_the_bounce_dump(hooks: Any) -> None:
    from bounce_reports import dsn

    (raw,) = [raw for (_, _, rcpt), raw in zip(hooks.messenger.messages, hooks.messenger.raw,
                                                 strict=True) if rcpt == "ann@example.org"]
    dump = dsn(raw, "ann@example.org", "5.1.1", "550 5.1.1 user unknown").decode()
    response = _postmark(hooks, "ann@example.org", Content=dump)  # "Include bounce content"
    assert response.get_json() == {"outcomes": ["suppressed"]}
    _bounced_through_the_processor(hooks, "ann@example.org")


def test_a_forged_postmark_token_names_only_the_address(hooks: Any) -> None:
    genuine = hooks.msgid["bob@example.org"]
    forged = genuine.replace(genuine.split("@")[0][-3:], "aaa")
    response = _postmark(hooks, "bob@example.org", Metadata={"outreach": forged.split(".", 1)[1]},
                         Content=f"Message-ID: {forged}")
    assert response.get_json() == {"outcomes": ["suppressed"]}
    assert _suppressed(hooks, "bob@example.org") == "bounced"  # by the address alone
    assert hooks.show(hooks.campaign_id)["stats"]["bounced"] == 0


@pytest.mark.parametrize("relay, expected", [
    ({"smtp_host": "smtp.postmarkapp.com"}, True),
    ({"smtp_urls": ("smtp://127.0.0.1:2525", "smtp://u:p@smtp-broadcasts.postmarkapp.com:587")}, True),
    ({"smtp_host": "mx.example.com"}, False),
])
def test_the_postmark_metadata_header_only_through_postmark(make_cenv: Any, relay: dict[str, Any],
                                                            expected: bool) -> None:
    with make_cenv(**relay) as env:
        env.run(env.launched([env.leads("ann@example.org")]))
        ((msg, _, _),) = env.messenger.messages
        header = msg["X-PM-Metadata-outreach"]
        if expected:  # the signed token of the Message-ID, short enough for Postmark's 80
            assert header == msg["Message-ID"].split(".", 1)[1].split("@")[0] and len(header) <= 80
        else:
            assert header is None


def test_unconfigured_webhooks_refuse(make_cenv: Any) -> None:
    with make_cenv() as env:
        for path in ("/webhooks/sendgrid", "/webhooks/mailgun", "/webhooks/postmark"):
            assert env.client.post(path, data=b"[]").status_code == 403
