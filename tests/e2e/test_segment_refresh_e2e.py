"""The local run finishes a segment refresh the request left to its job (the worker of `make run`)."""
from __future__ import annotations

import time
import uuid

import requests


def test_a_refresh_left_to_the_job_is_finished_by_the_local_worker(live_server):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    headers = live_server.headers(tenant)

    def call(method, path, body=None):
        answer = requests.request(method, f"{live_server.base_url}{path}", json=body, headers=headers, timeout=60)
        assert answer.status_code < 300, answer.text
        return answer.json()

    for n in range(60):  # more candidates than the 50 a create refreshes in the request
        call("POST", "/v1/clients", {"name": f"Venue {n:02d}", "pricing_tier": "vip"})
    criteria = {"match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}
    created = call("POST", "/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": criteria})
    assert created["refreshing"] is True and created["refresh"]["processed"] == 50
    assert created["refresh"]["total"] == 60
    deadline = time.monotonic() + 20
    while (segment := call("GET", f"/v1/segments/{created['id']}"))["refreshing"]:
        assert time.monotonic() < deadline, segment
        time.sleep(0.2)
    assert segment["client_count"] == 60 and segment["refresh"]["status"] == "done"
