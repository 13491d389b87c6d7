"""SES inbound: a reply lands threaded under the email it answers; duplicates and strangers are handled."""
from __future__ import annotations

import pytest

import app as app_module
from chalicelib.config import get_settings, reset_settings


@pytest.fixture
def inbox(api, monkeypatch, tmp_path):
    monkeypatch.setenv("S3_LOCAL_DIR", str(tmp_path / "s3"))
    reset_settings()
    get_settings()  # read now: the Chalice test client swaps in .chalice/config.json's variables during requests
    assert api.patch("/v1/settings/client", {"inbound_address": "acme@in.nexusrms.test",
                                             "sending_address": "office@acme-rentals.test"}).status_code == 200
    return tmp_path / "s3" / get_settings().inbound_email_bucket


def deliver(inbox, name, raw: str):
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_text(raw)
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "eu-west-1",
                          "s3": {"bucket": {"name": get_settings().inbound_email_bucket}, "object": {"key": name}}}]}
    return app_module.on_inbound_email(event, None)


def reply(message_id, in_reply_to, subject="Re: Quote for May", sender="jane@acme.test"):
    return (f"From: Jane Doe <{sender}>\r\nTo: acme@in.nexusrms.test\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id}\r\nIn-Reply-To: {in_reply_to}\r\nDate: Mon, 02 Mar 2026 10:30:00 +0000\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\nYes please, book it.\r\n\r\n> Here is the quote\r\n")


def test_a_reply_is_logged_threaded_under_the_email_it_answers(api, inbox):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    contact = api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe",
                                                               "email": "jane@acme.test"}).data
    base = f"/v1/clients/{client['id']}/communications"
    sent = api.post(base, {"type": "email", "subject": "Quote for May", "body": "Here is the quote"}).data
    assert sent["status"] == "sent" and sent["message_id"]
    assert sent["from_email"] == "office@acme-rentals.test"
    result = deliver(inbox, "r1.eml", reply("<r1@acme.test>", sent["message_id"]))
    assert result["status"] == "logged"
    logged = api.get(f"{base}/{result['communication_id']}").data
    assert logged["direction"] == "inbound" and logged["status"] == "delivered"
    assert logged["client_contact_id"] == contact["id"] and logged["from_email"] == "jane@acme.test"
    assert logged["thread_id"] and logged["thread_id"] == api.get(f"{base}/{sent['id']}").data["thread_id"]
    assert "Yes please" in logged["body"]


def test_an_email_dated_before_1970_is_logged_at_its_arrival(api, inbox):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    raw = reply("<old@acme.test>", "<none@x>").replace("Mon, 02 Mar 2026", "Wed, 31 Dec 1969")
    result = deliver(inbox, "old.eml", raw)
    assert result["status"] == "logged"
    logged = api.get(f"/v1/clients/{client['id']}/communications/{result['communication_id']}").data
    assert logged["occurred_at"] >= "2026"


def test_the_same_message_delivered_twice_is_logged_once(api, inbox):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    assert deliver(inbox, "a.eml", reply("<dup@acme.test>", "<none@x>"))["status"] == "logged"
    assert deliver(inbox, "b.eml", reply("<dup@acme.test>", "<none@x>"))["status"] == "duplicate"
    items = api.get(f"/v1/clients/{client['id']}/communications").data["items"]
    assert len(items) == 1


def test_subject_threading_strips_prefixes_within_the_client(api, inbox):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    first = deliver(inbox, "1.eml", reply("<s1@acme.test>", "<x@x>", subject="Stage  plan"))
    second = deliver(inbox, "2.eml", reply("<s2@acme.test>", "<y@y>", subject="RE: fwd: stage plan"))
    base = f"/v1/clients/{client['id']}/communications"
    one = api.get(f"{base}/{first['communication_id']}").data
    two = api.get(f"{base}/{second['communication_id']}").data
    assert one["thread_id"] == two["thread_id"] is not None


def test_an_unknown_sender_waits_in_unmatched_until_assigned(api, inbox):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    result = deliver(inbox, "u.eml", reply("<u1@else.test>", "<x@x>", subject="Hello", sender="who@else.test"))
    assert result["status"] == "unmatched"
    [item] = api.get("/v1/inbox/unmatched").data["items"]
    assert item["from_email"] == "who@else.test" and item["subject"] == "Hello"
    assert item["to_email"] == "acme@in.nexusrms.test" and "Yes please" in item["body_preview"]
    assigned = api.post(f"/v1/inbox/unmatched/{item['id']}/assign", {"client_id": client["id"]})
    assert assigned.status_code == 200 and assigned.data["client_id"] == client["id"]
    assert api.get("/v1/inbox/unmatched").data["items"] == []


def test_mail_without_from_or_for_an_unknown_recipient_is_rejected_with_a_reason(api, inbox):
    assert deliver(inbox, "m.eml", "To: acme@in.nexusrms.test\r\nSubject: x\r\n\r\nbody")["status"] == "rejected"
    stranger = reply("<z@acme.test>", "<x@x>").replace("acme@in.nexusrms.test", "nobody@in.nexusrms.test")
    assert deliver(inbox, "n.eml", stranger) == {"status": "rejected", "reason": "unknown recipient"}


def test_an_email_assigned_after_its_answer_answers_its_response_time(api, inbox):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    deliver(inbox, "u.eml", reply("<u2@else.test>", "<x@x>", subject="Hello", sender="who@else.test"))  # 10:30
    thread = api.post(f"/v1/clients/{client['id']}/threads", {"subject": "Hello", "type": "email"}).data
    api.post(f"/v1/clients/{client['id']}/communications", {"type": "phone", "direction": "outbound",
                                                             "thread_id": thread["id"],
                                                             "occurred_at": "2026-03-02T11:15:00Z"})
    [item] = api.get("/v1/inbox/unmatched").data["items"]
    assigned = api.post(f"/v1/inbox/unmatched/{item['id']}/assign", {"client_id": client["id"]})
    assert assigned.status_code == 200 and assigned.data["response_time_minutes"] == 45
