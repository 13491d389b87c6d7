"""The local run keeps category counts within seconds of an assignment and refreshes due segments by schedule."""
from __future__ import annotations

import time
import uuid

import requests

from tests.ddb_local import ddb_client


class Session:
    def __init__(self, live_server):
        self.tenant = f"t{uuid.uuid4().hex[:8]}"
        self.base = live_server.base_url
        self.headers = live_server.headers(self.tenant)

    def call(self, method, path, body=None):
        return requests.request(method, f"{self.base}{path}", json=body, headers=self.headers, timeout=60)


def _eventually(probe, timeout=20.0):
    """Seconds until `probe()` is truthy."""
    start = time.monotonic()
    while not probe():
        assert time.monotonic() - start < timeout, "not reached in time"
        time.sleep(0.2)
    return time.monotonic() - start


def test_clients_count_follows_assignment_and_archive_within_seconds(live_server):
    s = Session(live_server)
    category = s.call("POST", "/v1/categories", {"name": "Festival"}).json()
    client = s.call("POST", "/v1/clients", {"name": "Acme", "category_ids": [category["id"]]}).json()

    def count():
        return s.call("GET", f"/v1/categories/{category['id']}").json()["clients_count"]

    assert _eventually(lambda: count() == 1, timeout=5) < 5
    s.call("POST", f"/v1/clients/{client['id']}/archive")
    assert _eventually(lambda: count() == 0, timeout=5) < 5


def test_a_due_segment_is_refreshed_by_the_schedule(live_server, ddb_endpoint):
    s = Session(live_server)
    criteria = {"match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}
    segment = s.call("POST", "/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": criteria,
                                              "refresh_frequency": "hourly"}).json()
    assert segment["client_count"] == 0 and segment["needs_refresh"] is False
    s.call("POST", "/v1/clients", {"name": "Acme", "pricing_tier": "vip"})
    # An hour passes: the last refresh is made old, so the segment is due.
    ddb_client(ddb_endpoint).update_item(
        TableName=live_server.table_name,
        Key={"pk": {"S": f"T#{s.tenant}#SEGMENTS"}, "sk": {"S": f"SEG#{segment['id']}"}},
        UpdateExpression="SET last_refreshed_at = :old",
        ExpressionAttributeValues={":old": {"S": "2020-01-01T00:00:00.000000+0000"}})
    assert s.call("GET", f"/v1/segments/{segment['id']}").json()["needs_refresh"] is True

    def refreshed():
        return s.call("GET", f"/v1/segments/{segment['id']}").json()["client_count"] == 1

    _eventually(refreshed, timeout=20)
    members = s.call("GET", f"/v1/segments/{segment['id']}/members").json()["items"]
    assert [m["name"] for m in members] == ["Acme"] and members[0]["added_method"] == "automatic"
