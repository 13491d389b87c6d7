"""On DynamoDB Local with its stream: every create answers the resource as a read shows it once the stream settled."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.ddb


def _settled_read(ddb_api, stream, path):
    stream.settle()
    return ddb_api.get(path).data


def test_a_created_client_answers_the_scores_a_later_read_shows(ddb_api, stream):
    created = ddb_api.post("/v1/clients", {"name": "Acme", "email": "hello@acme.test", "phone": "+31 20 555 0100"})
    assert created.status_code == 201
    assert created.data["churn_probability"] == 0.0474 and created.data["lead_classification"] == "cold"
    assert _settled_read(ddb_api, stream, f"/v1/clients/{created.data['id']}") == created.data


def test_created_children_answer_what_a_later_read_shows(ddb_api, stream):
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    base = f"/v1/clients/{client['id']}"
    contact = ddb_api.post(f"{base}/contacts", {"full_name": "Pat Primary", "email": "pat@acme.test"})
    second = ddb_api.post(f"{base}/contacts", {"full_name": "Sam Second", "email": "sam@acme.test",
                                               "is_billing_contact": True})
    thread = ddb_api.post(f"{base}/threads", {"subject": "Rig plan", "type": "email"})
    task = ddb_api.post(f"{base}/tasks", {"title": "Call back", "due_date": "2026-06-01"})
    created = {f"{base}/contacts/{contact.data['id']}": contact, f"{base}/contacts/{second.data['id']}": second,
               f"{base}/threads/{thread.data['id']}": thread, f"{base}/tasks/{task.data['id']}": task}
    for path, answer in created.items():
        assert answer.status_code == 201, (path, answer.data)
        read = _settled_read(ddb_api, stream, path)
        if path.startswith(f"{base}/threads/"):
            read.pop("messages")  # the single-thread read adds its messages
        if path.startswith(f"{base}/tasks/"):
            read = next(t for t in ddb_api.get(f"{base}/tasks").data["items"] if t["id"] == answer.data["id"])
        assert read == answer.data, path


def test_an_inbound_item_logged_after_its_answer_answers_its_response_time(ddb_api, stream):
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    base = f"/v1/clients/{client['id']}/communications"
    ddb_api.post(base, {"type": "phone", "direction": "outbound", "occurred_at": "2026-03-02T10:30:00Z"})
    asked = ddb_api.post(base, {"type": "phone", "direction": "inbound", "occurred_at": "2026-03-02T09:00:00Z"})
    assert asked.status_code == 201 and asked.data["response_time_minutes"] == 90
    assert _settled_read(ddb_api, stream, f"{base}/{asked.data['id']}") == asked.data
    unanswered = ddb_api.post(base, {"type": "phone", "direction": "inbound"}).data
    assert unanswered["response_time_minutes"] is None
    assert _settled_read(ddb_api, stream, f"{base}/{unanswered['id']}") == unanswered


def test_created_categories_segments_and_fields_answer_what_a_later_read_shows(ddb_api, stream):
    ddb_api.post("/v1/clients", {"name": "Acme", "tags": ["vip"]})
    category = ddb_api.post("/v1/categories", {"name": "Events"})
    dynamic = ddb_api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": {
        "match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]}})
    static = ddb_api.post("/v1/segments", {"name": "Hand-picked", "type": "static"})
    for path, answer in {f"/v1/categories/{category.data['id']}": category,
                         f"/v1/segments/{dynamic.data['id']}": dynamic,
                         f"/v1/segments/{static.data['id']}": static}.items():
        assert answer.status_code == 201, (path, answer.data)
        assert _settled_read(ddb_api, stream, path) == answer.data, path
