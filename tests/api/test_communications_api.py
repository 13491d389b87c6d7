"""/v1/clients/{id}/communications and /v1/follow-ups through the real app on moto: the contract's §5 and §15."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime
from pathlib import Path

import pytest

from chalicelib.config import get_settings, reset_settings


@pytest.fixture(autouse=True)
def _local_mail(monkeypatch):
    """The default local outbox sender, whatever the shell says; autouse, so it runs before `aws` caches settings
    (the Chalice test client later swaps `.chalice/config.json` values into the environment during requests)."""
    for name in ("OUTBOX_DIR", "EMAIL_SENDER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def outbox(api, tmp_path) -> Path:
    return tmp_path / "outbox"


def emails(outbox: Path) -> list[email.message.EmailMessage]:
    files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def new_client(api, name="Acme Events") -> str:
    response = api.post("/v1/clients", {"name": name})
    assert response.status_code == 201, response.data
    return response.data["id"]


def add_contact(api, client_id, full_name="Jane Smith", email_="jane@example.com") -> dict:
    response = api.post(f"/v1/clients/{client_id}/contacts", {"full_name": full_name, "email": email_})
    assert response.status_code == 201, response.data
    return response.data


def url(client_id, *rest) -> str:
    return "/".join([f"/v1/clients/{client_id}/communications", *rest])


def log(api, client_id, **body) -> dict:
    response = api.post(url(client_id), body)
    assert response.status_code == 201, (response.status_code, response.data)
    return response.data


def note(api, client_id, body="Remark", **fields) -> dict:
    return log(api, client_id, type="note", body=body, **fields)


def listing(api, client_id, query="") -> list[dict]:
    response = api.get(url(client_id) + query)
    assert response.status_code == 200, response.data
    return response.data["items"]


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def ids(items) -> list[str]:
    return [i["id"] for i in items]


def error(response, status, code):
    assert response.status_code == status, (response.status_code, response.data)
    assert response.data["error"]["code"] == code, response.data
    return response.data["error"]


def fields_of(response) -> set[str]:
    error(response, 422, "validation_error")
    return {d["field"] for d in response.data["error"]["details"]}


# --- email ------------------------------------------------------------------------------------------

def test_email_requires_subject_and_body_naming_each(api):
    client_id = new_client(api)
    assert fields_of(api.post(url(client_id), {"type": "email"})) >= {"subject", "body"}
    assert "body" in fields_of(api.post(url(client_id), {"type": "email", "subject": "Hi"}))
    assert "subject" in fields_of(api.post(url(client_id), {"type": "email", "body": "Hello"}))
    assert listing(api, client_id) == []


def test_email_is_sent_by_default_to_the_primary_contact_and_its_message_id_is_stored(api, outbox):
    client_id = new_client(api)
    add_contact(api, client_id, "Jane Smith", "jane@example.com")
    sent = log(api, client_id, type="email", subject="Your quote", body="Please find it attached.")
    assert (sent["status"], sent["direction"], sent["to_email"]) == ("sent", "outbound", "jane@example.com")
    assert sent["sent_at"] and sent["sent_at"].endswith("Z")
    [message] = emails(outbox)
    assert sent["message_id"] and sent["message_id"] == message["Message-ID"]
    assert message["To"] == "jane@example.com" and message["Subject"] == "Your quote"
    assert message.get_body(("plain",)).get_content().strip() == "Please find it attached."
    assert api.get(url(client_id, sent["id"])).data["message_id"] == message["Message-ID"]


def test_email_goes_to_the_linked_contact_from_the_settings_sending_address(api, outbox):
    client_id = new_client(api)
    add_contact(api, client_id, "Jane Smith", "jane@example.com")
    tom = add_contact(api, client_id, "Tom Berg", "tom@example.com")
    assert api.patch("/v1/settings/client", {"sending_address": "office@acme-rms.example"}).status_code == 200
    sent = log(api, client_id, type="email", subject="Hi Tom", body="Hello", client_contact_id=tom["id"])
    assert (sent["to_email"], sent["from_email"], sent["client_contact_id"]) == \
        ("tom@example.com", "office@acme-rms.example", tom["id"])
    [message] = emails(outbox)
    assert message["To"] == "tom@example.com"
    assert "office@acme-rms.example" in message["From"]


def test_an_inbound_email_logged_by_hand_is_not_sent(api, outbox):
    client_id = new_client(api)
    logged = log(api, client_id, type="email", direction="inbound", subject="Question", body="Can you call?",
                 from_email="jane@example.com")
    assert (logged["direction"], logged["status"], logged["message_id"]) == ("inbound", "delivered", None)
    assert emails(outbox) == []


def test_send_now_false_saves_a_draft_which_send_then_sends(api, outbox):
    client_id = new_client(api)
    add_contact(api, client_id)
    draft = log(api, client_id, type="email", subject="Draft", body="Later", send_now=False)
    assert (draft["status"], draft["sent_at"], draft["message_id"]) == ("draft", None, None)
    assert emails(outbox) == []
    response = api.post(url(client_id, draft["id"], "send"))
    assert response.status_code == 200, response.data
    assert response.data["status"] == "sent" and response.data["sent_at"]
    [message] = emails(outbox)
    assert response.data["message_id"] == message["Message-ID"]
    assert api.get(url(client_id, draft["id"])).data["status"] == "sent"


def test_a_failed_send_is_kept_as_failed_and_can_be_sent_again(api, monkeypatch, outbox):
    client_id = new_client(api)
    add_contact(api, client_id)
    monkeypatch.setenv("EMAIL_SENDER", "carrier-pigeon")
    reset_settings()
    assert get_settings().email_sender == "carrier-pigeon"  # cached before the test client swaps the env in
    failed = log(api, client_id, type="email", subject="Lost?", body="Never lost")
    assert (failed["status"], failed["sent_at"], failed["message_id"]) == ("failed", None, None)
    stored = api.get(url(client_id, failed["id"])).data
    assert (stored["status"], stored["subject"], stored["body"]) == ("failed", "Lost?", "Never lost")
    assert ids(listing(api, client_id)) == [failed["id"]]
    assert emails(outbox) == []

    monkeypatch.delenv("EMAIL_SENDER")
    reset_settings()
    assert get_settings().email_sender == "outbox"
    retried = api.post(url(client_id, failed["id"], "send"))
    assert retried.status_code == 200, retried.data
    [message] = emails(outbox)
    assert (retried.data["status"], retried.data["message_id"]) == ("sent", message["Message-ID"])


# --- phone, meeting, note, sms ----------------------------------------------------------------------

def test_phone_requires_direction_and_defaults_its_subject(api):
    client_id = new_client(api)
    assert "direction" in fields_of(api.post(url(client_id), {"type": "phone"}))
    call = log(api, client_id, type="phone", direction="inbound", outcome="Wants a quote")
    assert (call["subject"], call["direction"], call["outcome"]) == ("Phone Call", "inbound", "Wants a quote")


def test_phone_outcome_over_100_chars_is_422(api):
    client_id = new_client(api)
    too_long = api.post(url(client_id), {"type": "phone", "direction": "outbound", "outcome": "x" * 101})
    assert "outcome" in fields_of(too_long)
    assert log(api, client_id, type="phone", direction="outbound", outcome="x" * 100)["outcome"] == "x" * 100


def test_meeting_duration_is_computed_and_end_before_start_is_422(api):
    client_id = new_client(api)
    meeting = log(api, client_id, type="meeting", subject="Site visit", meeting_date="2025-04-02",
                  start_time="09:15", end_time="10:45", location_type="in_person", location="Hall 3",
                  attendees=["Jane", "Tom"], action_items=["Send floor plan"])
    assert (meeting["duration_minutes"], meeting["start_time"], meeting["meeting_date"]) == \
        (90, "09:15", "2025-04-02")
    assert meeting["attendees"] == ["Jane", "Tom"] and meeting["action_items"] == ["Send floor plan"]
    backwards = api.post(url(client_id), {"type": "meeting", "subject": "Oops",
                                          "start_time": "11:00", "end_time": "10:00"})
    assert "end_time" in fields_of(backwards)
    assert "subject" in fields_of(api.post(url(client_id), {"type": "meeting"}))


def test_note_needs_only_a_body_and_is_always_outbound_and_sent(api):
    client_id = new_client(api)
    assert "body" in fields_of(api.post(url(client_id), {"type": "note"}))
    assert "direction" in fields_of(api.post(url(client_id), {"type": "note", "body": "x", "direction": "inbound"}))
    remark = note(api, client_id, "Prefers calls in the morning")
    assert (remark["direction"], remark["status"]) == ("outbound", "sent")


def test_sms_requires_a_body(api):
    client_id = new_client(api)
    assert "body" in fields_of(api.post(url(client_id), {"type": "sms", "to_phone": "+31 6 1234"}))
    sms = log(api, client_id, type="sms", body="See you at 10", to_phone="+31 6 1234")
    assert sms["body"] == "See you at 10" and sms["type"] == "sms"


# --- occurred_at, ordering, filters, pagination ---------------------------------------------------

def test_occurred_at_is_writable_and_lists_are_newest_first_by_it(api):
    client_id = new_client(api)
    middle = note(api, client_id, "middle", occurred_at="2025-02-10T09:00:00Z")
    oldest = note(api, client_id, "oldest", occurred_at="2025-01-05T09:00:00Z")
    newest = note(api, client_id, "newest", occurred_at="2025-03-20T09:00:00Z")
    assert oldest["occurred_at"].endswith("Z") and at(oldest["occurred_at"]) == at("2025-01-05T09:00:00Z")
    assert ids(listing(api, client_id)) == [newest["id"], middle["id"], oldest["id"]]


def test_filters_by_type_list_and_date_range(api):
    client_id = new_client(api)
    jan = note(api, client_id, "january", occurred_at="2025-01-15T10:00:00Z")
    feb = log(api, client_id, type="phone", direction="inbound", occurred_at="2025-02-15T10:00:00Z")
    mar = log(api, client_id, type="sms", body="march", occurred_at="2025-03-15T23:59:00Z")
    assert ids(listing(api, client_id, "?type=phone,sms")) == [mar["id"], feb["id"]]
    assert ids(listing(api, client_id, "?type=note")) == [jan["id"]]
    assert ids(listing(api, client_id, "?from=2025-02-01&to=2025-03-15")) == [mar["id"], feb["id"]]
    assert ids(listing(api, client_id, "?to=2025-02-15")) == [feb["id"], jan["id"]]
    assert ids(listing(api, client_id, "?from=2025-03-16")) == []
    error(api.get(url(client_id) + "?type=fax"), 400, "bad_request")


def test_filters_by_contact_project_and_thread(api):
    client_id = new_client(api)
    jane = add_contact(api, client_id)
    thread = api.post(f"/v1/clients/{client_id}/threads", {"subject": "Stage plan"})
    assert thread.status_code == 201, thread.data
    thread_id = thread.data["id"]
    linked = note(api, client_id, "linked", client_contact_id=jane["id"], project_id="PRJ-1", thread_id=thread_id)
    note(api, client_id, "loose")
    assert ids(listing(api, client_id, f"?contact_id={jane['id']}")) == [linked["id"]]
    assert ids(listing(api, client_id, "?project_id=PRJ-1")) == [linked["id"]]
    assert ids(listing(api, client_id, f"?thread_id={thread_id}")) == [linked["id"]]
    assert listing(api, client_id, "?project_id=PRJ-2") == []


def test_q_searches_subject_and_body_case_insensitively(api):
    client_id = new_client(api)
    by_subject = log(api, client_id, type="meeting", subject="Budget REVIEW")
    by_body = note(api, client_id, "We should review the stage plan")
    note(api, client_id, "Nothing relevant")
    assert set(ids(listing(api, client_id, "?q=Review"))) == {by_subject["id"], by_body["id"]}
    assert ids(listing(api, client_id, "?q=budget")) == [by_subject["id"]]
    assert listing(api, client_id, "?q=absent") == []


def test_pagination_with_limit_and_cursor_walks_everything_once(api):
    client_id = new_client(api)
    made = [note(api, client_id, f"n{i}", occurred_at=f"2025-01-0{i + 1}T08:00:00Z")["id"] for i in range(3)]
    first = api.get(url(client_id) + "?limit=2")
    assert first.status_code == 200 and len(first.data["items"]) == 2 and first.data["next_cursor"]
    second = api.get(url(client_id) + f"?limit=2&cursor={first.data['next_cursor']}")
    assert second.status_code == 200 and second.data["next_cursor"] is None
    assert ids(first.data["items"]) + ids(second.data["items"]) == list(reversed(made))
    error(api.get(url(client_id) + "?limit=2&cursor=" + first.data["next_cursor"][:-2] + "xx"),
          400, "invalid_cursor")


# --- status moves, delete ---------------------------------------------------------------------------

def test_patch_moves_status_forward_with_server_stamps(api):
    client_id = new_client(api)
    sms = log(api, client_id, type="sms", body="Hello", direction="outbound")
    assert sms["status"] == "sent" and sms["delivered_at"] is None
    delivered = api.patch(url(client_id, sms["id"]), {"status": "delivered"})
    assert delivered.status_code == 200, delivered.data
    assert delivered.data["status"] == "delivered" and delivered.data["delivered_at"]
    read = api.patch(url(client_id, sms["id"]), {"status": "read"}).data
    assert read["status"] == "read" and read["read_at"] and read["delivered_at"] == delivered.data["delivered_at"]
    error(api.patch(url(client_id, sms["id"]), {"status": "sent"}), 409, "invalid_status")
    assert "read_at" in fields_of(api.patch(url(client_id, sms["id"]), {"read_at": "2025-01-01T00:00:00Z"}))
    assert api.get(url(client_id, sms["id"])).data["status"] == "read"


def test_delivered_is_invalid_status_for_a_phone_call(api):
    client_id = new_client(api)
    call = log(api, client_id, type="phone", direction="outbound")
    error(api.patch(url(client_id, call["id"]), {"status": "delivered"}), 409, "invalid_status")
    assert api.get(url(client_id, call["id"])).data["status"] == "sent"


def test_delete_answers_204_then_404_and_gone_from_lists(api):
    client_id = new_client(api)
    gone = note(api, client_id, "to delete")
    kept = note(api, client_id, "to keep")
    response = api.call("DELETE", url(client_id, gone["id"]))
    assert response.status_code == 204
    error(api.get(url(client_id, gone["id"])), 404, "not_found")
    assert ids(listing(api, client_id)) == [kept["id"]]
    assert ids(listing(api, client_id, "?q=delete")) == []
    error(api.call("DELETE", url(client_id, gone["id"])), 404, "not_found")


# --- follow-ups -------------------------------------------------------------------------------------

def test_follow_ups_list_the_tenant_soonest_first_and_never_another_tenant(api):
    acme, globex = new_client(api, "Acme"), new_client(api, "Globex")
    late = note(api, acme, "late", requires_followup=True, followup_date="2025-05-20")
    soon = note(api, globex, "soon", requires_followup=True, followup_date="2025-05-01")
    note(api, acme, "none")
    other = api.as_("t2")
    note(other, new_client(other, "Elsewhere"), "foreign", requires_followup=True, followup_date="2025-04-01")
    response = api.get("/v1/follow-ups?due_before=2025-06-01")
    assert response.status_code == 200, response.data
    assert ids(response.data["items"]) == [soon["id"], late["id"]]
    assert ids(api.get("/v1/follow-ups?due_before=2025-05-10").data["items"]) == [soon["id"]]


# --- links, tenancy, roles, mass assignment ---------------------------------------------------------

def test_client_contact_of_another_client_is_422(api):
    acme, globex = new_client(api, "Acme"), new_client(api, "Globex")
    stranger = add_contact(api, globex, "Gus Globex", "gus@globex.example")
    response = api.post(url(acme), {"type": "note", "body": "x", "client_contact_id": stranger["id"]})
    assert "client_contact_id" in fields_of(response)


def test_another_tenants_client_is_404(api):
    client_id = new_client(api)
    other = api.as_("t2")
    error(other.post(url(client_id), {"type": "note", "body": "x"}), 404, "not_found")
    error(other.get(url(client_id)), 404, "not_found")
    remark = note(api, client_id)
    error(other.get(url(client_id, remark["id"])), 404, "not_found")


def test_viewer_cannot_create(api):
    client_id = new_client(api)
    viewer = api.as_("t1", ["viewer"])
    error(viewer.post(url(client_id), {"type": "note", "body": "x"}), 403, "forbidden")
    assert viewer.get(url(client_id)).status_code == 200
    assert listing(api, client_id) == []


@pytest.mark.parametrize("extra", [{"status": "read"}, {"message_id": "<x@y>"}, {"sent_at": "2025-01-01T00:00:00Z"},
                                   {"colour": "red"}])
def test_read_only_and_unknown_fields_on_create_are_422(api, extra):
    client_id = new_client(api)
    response = api.post(url(client_id), {"type": "note", "body": "x", **extra})
    assert set(extra) <= fields_of(response)


# --- edits, idempotency, follow-up upkeep -----------------------------------------------------------

def test_patching_a_meeting_time_recomputes_duration_and_rejects_end_before_start(api):
    client_id = new_client(api)
    meeting = log(api, client_id, type="meeting", subject="Walkthrough", start_time="10:00", end_time="10:30")
    longer = api.patch(url(client_id, meeting["id"]), {"end_time": "11:15"})
    assert longer.status_code == 200, longer.data
    assert (longer.data["end_time"], longer.data["duration_minutes"]) == ("11:15", 75)
    assert "end_time" in fields_of(api.patch(url(client_id, meeting["id"]), {"end_time": "09:00"}))
    assert api.get(url(client_id, meeting["id"])).data["duration_minutes"] == 75


def test_the_same_idempotency_key_sends_the_email_once(api, outbox):
    client_id = new_client(api)
    add_contact(api, client_id)
    body = {"type": "email", "subject": "Once", "body": "Only once"}
    first = api.post(url(client_id), body, headers={"Idempotency-Key": "mail-1"})
    again = api.post(url(client_id), body, headers={"Idempotency-Key": "mail-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data["id"] == first.data["id"]
    assert len(emails(outbox)) == 1
    assert ids(listing(api, client_id)) == [first.data["id"]]


def test_a_follow_up_leaves_the_list_when_cleared_or_deleted(api):
    client_id = new_client(api)
    cleared = note(api, client_id, "call back", requires_followup=True, followup_date="2025-05-01")
    deleted = note(api, client_id, "send deck", requires_followup=True, followup_date="2025-05-02")
    assert ids(api.get("/v1/follow-ups").data["items"]) == [cleared["id"], deleted["id"]]
    assert api.patch(url(client_id, cleared["id"]), {"requires_followup": False}).status_code == 200
    assert api.call("DELETE", url(client_id, deleted["id"])).status_code == 204
    assert api.get("/v1/follow-ups").data["items"] == []


def test_a_cursor_is_bound_to_its_filters(api):
    client_id = new_client(api)
    for i in range(2):
        note(api, client_id, f"alpha {i}")
    first = api.get(url(client_id) + "?q=alpha&limit=1")
    assert first.status_code == 200 and first.data["next_cursor"]
    error(api.get(url(client_id) + f"?q=beta&limit=1&cursor={first.data['next_cursor']}"), 400, "invalid_cursor")


def test_an_inbound_item_logged_after_its_answer_is_created_answered(api):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    base = f"/v1/clients/{client['id']}/communications"
    api.post(base, {"type": "sms", "direction": "outbound", "body": "On our way",
                    "occurred_at": "2026-03-02T09:20:00Z"})
    asked = api.post(base, {"type": "phone", "direction": "inbound", "occurred_at": "2026-03-02T09:00:00Z"})
    assert asked.status_code == 201 and asked.data["response_time_minutes"] == 20
    later = api.post(base, {"type": "phone", "direction": "inbound", "occurred_at": "2026-03-02T10:00:00Z"}).data
    assert later["response_time_minutes"] is None
