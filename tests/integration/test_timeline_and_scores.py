"""On DynamoDB Local with its stream: the timeline records every change in order; inputs rescore the client."""
from __future__ import annotations

import pytest

import app as app_module

pytestmark = pytest.mark.ddb


def test_the_timeline_shows_the_clients_changes_in_order_once_each(ddb_api, stream):
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    ddb_api.patch(f"/v1/clients/{client['id']}", {"name": "Acme Events", "phone": "+31 20 555 0100"})
    contact = ddb_api.post(f"/v1/clients/{client['id']}/contacts",
                           {"full_name": "Pat Primary", "email": "pat@acme.test"}).data
    ddb_api.post(f"/v1/clients/{client['id']}/archive")
    batch = stream.take()
    for _ in range(2):  # delivered twice: still one entry per change
        app_module.on_table_stream({"Records": batch}, None)
    stream.settle()
    items = ddb_api.get(f"/v1/clients/{client['id']}/activity").data["items"]
    seen = [(i["entity_type"], i["action"]) for i in items]
    assert seen[0] == ("client", "archived") and seen[-1] == ("client", "created")
    assert ("contact", "created") in seen and ("client", "updated") in seen
    assert len(seen) == len({i["id"] for i in items})
    renamed = next(i for i in items if i["action"] == "updated" and "name" in (i["changes"] or {}))
    assert renamed["changes"]["name"] == {"from": "Acme", "to": "Acme Events"}
    created = next(i for i in items if i["entity_type"] == "contact")
    assert created["entity_id"] == contact["id"] and created["actor"] == "user-1"
    assert renamed["actor"] == "user-1"
    ats = [i["at"] for i in items]
    assert ats == sorted(ats, reverse=True)


def test_a_communication_rescores_the_client_through_the_stream(ddb_api, stream):
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    stream.settle()
    before = ddb_api.get(f"/v1/clients/{client['id']}/health").data
    engagement = next(f for f in before["factors"] if f["name"] == "communication_engagement")
    assert engagement["value"] is None
    for _ in range(3):
        ddb_api.post(f"/v1/clients/{client['id']}/communications", {"type": "phone", "direction": "inbound"})
    stream.settle()
    after = ddb_api.get(f"/v1/clients/{client['id']}/health").data
    engagement = next(f for f in after["factors"] if f["name"] == "communication_engagement")
    assert engagement["value"] == 3 and engagement["score"] == 80
    lead = ddb_api.get(f"/v1/clients/{client['id']}/lead-score").data
    history = ddb_api.get(f"/v1/clients/{client['id']}/lead-score/history").data["items"]
    assert len(history) == len({h["score"] for h in history}) and history[0]["score"] == lead["total_score"]
    assert ddb_api.get(f"/v1/clients/{client['id']}").data["version"] == client["version"]
