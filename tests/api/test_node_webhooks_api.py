"""Node platform webhooks (contract §11): signatures, replays, held events and read-only synced contacts."""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib.config import get_settings, reset_settings

SECRET = "whsec_" + base64.b64encode(b"node-platform-test-key!!").decode()
USER = {"id": "u-1", "full_name": "Nora Node", "email": "nora@acme.test", "phone": "+32 1", "job_title": "TD",
        "updated_at": "2026-11-01T10:00:00Z"}


@pytest.fixture
def node(api, monkeypatch):
    monkeypatch.setenv("NODE_WEBHOOK_SECRET", SECRET)
    reset_settings()
    get_settings()  # read now: the Chalice test client swaps in .chalice/config.json's variables during requests
    return Hooks(api)


class Hooks:
    def __init__(self, api):
        self.api = api

    def send(self, webhook_id, type_, data, *, tenant="t1", at=None, signature=None, raw=None):
        body = raw if raw is not None else json.dumps(
            {"type": type_, "tenant_id": tenant, "occurred_at": "2026-11-01T10:00:00Z", "data": data})
        when = at or datetime.now(UTC)
        headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(when.timestamp())),
                   "webhook-signature": signature or Webhook(SECRET).sign(webhook_id, when, body),
                   "Content-Type": "application/json"}
        response = self.api.http.http.request("POST", "/v1/webhooks/node", headers=headers, body=body)
        response.data = json.loads(response.body) if response.body else None
        return response

    def contacts(self, client_id):
        return self.api.get(f"/v1/clients/{client_id}/contacts").data["items"]


def _linked_client(node):
    client = node.api.post("/v1/clients", {"name": "Acme"}).data
    assert node.send("w-link", "client.linked", {"node_client_id": "n-1", "client_id": client["id"]}).status_code == 200
    return client


def test_client_linked_sets_node_client_id_and_url(node):
    client = _linked_client(node)
    stored = node.api.get(f"/v1/clients/{client['id']}").data
    assert stored["node_client_id"] == "n-1"
    assert stored["node_url"] == "https://nodes.nexusrms.io/clients/n-1"


def test_user_upserted_creates_a_read_only_node_contact(node):
    client = _linked_client(node)
    assert node.send("w-1", "user.upserted", {"node_client_id": "n-1", "user": USER}).status_code == 200
    [contact] = node.contacts(client["id"])
    assert contact["synced_from_node"] is True and contact["node_user_id"] == "u-1"
    assert contact["last_synced_at"].endswith("Z") and "node_user" in contact["badges"]
    path = f"/v1/clients/{client['id']}/contacts/{contact['id']}"
    refused = node.api.patch(path, {"full_name": "Someone Else"})
    assert refused.status_code == 409 and refused.data["error"]["code"] == "node_synced_read_only"
    assert node.api.patch(path, {"is_technical_contact": True}).data["is_technical_contact"] is True
    assert node.api.get(path).data["full_name"] == "Nora Node"


def test_the_same_webhook_twice_changes_nothing(node):
    client = _linked_client(node)
    node.send("w-1", "user.upserted", {"node_client_id": "n-1", "user": USER})
    before = node.contacts(client["id"])
    again = node.send("w-1", "user.upserted", {"node_client_id": "n-1", "user": {**USER, "full_name": "Changed",
                                                                              "updated_at": "2026-12-01T00:00:00Z"}})
    assert again.status_code == 200
    assert node.contacts(client["id"]) == before


def test_an_older_update_is_ignored_and_a_newer_one_applied(node):
    client = _linked_client(node)
    node.send("w-1", "user.upserted", {"node_client_id": "n-1", "user": USER})
    node.send("w-2", "user.upserted", {"node_client_id": "n-1",
                                       "user": {**USER, "full_name": "Old Name", "updated_at": "2026-10-01T00:00:00Z"}})
    assert node.contacts(client["id"])[0]["full_name"] == "Nora Node"
    node.send("w-3", "user.upserted", {"node_client_id": "n-1",
                                       "user": {**USER, "full_name": "Nora Newer",
                                                "updated_at": "2026-11-02T00:00:00Z"}})
    assert node.contacts(client["id"])[0]["full_name"] == "Nora Newer"


def test_events_for_an_unknown_node_client_are_held_until_it_is_linked(node):
    client = node.api.post("/v1/clients", {"name": "Later Linked"}).data
    held = node.send("w-1", "user.upserted", {"node_client_id": "n-9", "user": USER})
    assert held.status_code == 202
    assert node.contacts(client["id"]) == []
    node.send("w-2", "client.linked", {"node_client_id": "n-9", "client_id": client["id"]})
    assert [c["node_user_id"] for c in node.contacts(client["id"])] == ["u-1"]


def test_user_removed_keeps_the_contact_but_makes_it_editable(node):
    client = _linked_client(node)
    node.send("w-1", "user.upserted", {"node_client_id": "n-1", "user": USER})
    node.send("w-2", "user.removed", {"node_client_id": "n-1", "user_id": "u-1"})
    [contact] = node.contacts(client["id"])
    assert contact["synced_from_node"] is False
    path = f"/v1/clients/{client['id']}/contacts/{contact['id']}"
    assert node.api.patch(path, {"full_name": "Nora Core"}).data["full_name"] == "Nora Core"


def test_bad_signatures_and_stale_timestamps_are_401_and_change_nothing(node):
    client = _linked_client(node)
    data = {"node_client_id": "n-1", "user": USER}
    assert node.send("w-1", "user.upserted", data, signature="v1,AAAA").status_code == 401
    assert node.send("w-2", "user.upserted", data, signature="garbage").status_code == 401
    stale = node.send("w-3", "user.upserted", data, at=datetime.now(UTC) - timedelta(minutes=6))
    assert stale.status_code == 401 and stale.data["error"]["code"] == "unauthorized"
    assert node.contacts(client["id"]) == []


def test_unknown_types_are_accepted_and_ignored(node):
    assert node.send("w-1", "invoice.paid", {"x": 1}).status_code == 202


def test_a_signed_body_that_is_not_json_is_400_invalid_json(node):
    answer = node.send("w-1", None, None, raw="not json")
    assert answer.status_code == 400 and answer.data["error"]["code"] == "invalid_json"


def test_linking_another_tenants_client_is_404_and_changes_nothing(node):
    client = node.api.post("/v1/clients", {"name": "Mine"}).data
    answer = node.send("w-1", "client.linked", {"node_client_id": "n-2", "client_id": client["id"]}, tenant="t2")
    assert answer.status_code == 404
    assert node.api.get(f"/v1/clients/{client['id']}").data["node_client_id"] is None


def test_a_malformed_user_is_422_naming_the_field(node):
    _linked_client(node)
    answer = node.send("w-1", "user.upserted", {"node_client_id": "n-1", "user": {**USER, "email": "nope"}})
    assert answer.status_code == 422
    assert [d["field"] for d in answer.data["error"]["details"]] == ["data.user.email"]
