"""Segments on DynamoDB Local: realtime ones follow clients through the stream; scheduled refreshes resume."""
from __future__ import annotations

import pytest

import app as app_module
from chalicelib.domain import segment_cases

pytestmark = pytest.mark.ddb

VIP = {"match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}


def _members(api, segment_id):
    return sorted(m["name"] for m in api.get(f"/v1/segments/{segment_id}/members").data["items"])


def test_a_realtime_segment_follows_client_changes_through_the_stream(ddb_api, stream):
    acme = ddb_api.post("/v1/clients", {"name": "Acme", "pricing_tier": "vip"}).data
    segment = ddb_api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP,
                                            "refresh_frequency": "realtime"}).data
    assert segment["client_count"] == 1
    bolt = ddb_api.post("/v1/clients", {"name": "Bolt"}).data
    ddb_api.patch(f"/v1/clients/{bolt['id']}", {"pricing_tier": "vip"})
    ddb_api.patch(f"/v1/clients/{acme['id']}", {"pricing_tier": "standard"})
    stream.settle()
    assert _members(ddb_api, segment["id"]) == ["Bolt"]
    assert ddb_api.get(f"/v1/segments/{segment['id']}").data["client_count"] == 1
    ddb_api.patch(f"/v1/clients/{bolt['id']}", {"name": "Bolt Events"})
    stream.settle()
    listed = ddb_api.get(f"/v1/clients?segment_id={segment['id']}&q=events").data["items"]
    assert [c["name"] for c in listed] == ["Bolt Events"]  # member entries follow the client's name


def test_archiving_a_static_member_drops_it_from_the_count_and_restoring_brings_it_back(ddb_api, stream):
    segment = ddb_api.post("/v1/segments", {"name": "Picked", "type": "static"}).data
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    ddb_api.post(f"/v1/segments/{segment['id']}/members", {"client_id": client["id"]})
    ddb_api.post(f"/v1/clients/{client['id']}/archive")
    stream.settle()
    assert ddb_api.get(f"/v1/segments/{segment['id']}").data["client_count"] == 0
    assert _members(ddb_api, segment["id"]) == []
    ddb_api.post(f"/v1/clients/{client['id']}/restore")
    stream.settle()
    assert ddb_api.get(f"/v1/segments/{segment['id']}").data["client_count"] == 1


def test_a_scheduled_refresh_cut_off_resumes_where_it_stopped(ddb_api, monkeypatch, tmp_path):
    from chalicelib import queue
    from chalicelib.config import get_settings, reset_settings
    from chalicelib.domain import job_cases
    from chalicelib.local.job_queue import sqs_event
    from chalicelib.tables.stores import Stores
    from tests.api.conftest import run_queued_jobs

    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # the folder queue of this test
    reset_settings()
    get_settings()
    monkeypatch.setattr(segment_cases, "PAGE", 2)
    for n in range(7):
        ddb_api.post("/v1/clients", {"name": f"C{n}", "pricing_tier": "vip" if n % 2 == 0 else "standard"})
    segment = ddb_api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP,
                                            "refresh_frequency": "manual"}).data
    ddb_api.patch(f"/v1/segments/{segment['id']}", {"refresh_frequency": "hourly"})
    for n in range(7, 9):
        ddb_api.post("/v1/clients", {"name": f"C{n}", "pricing_tier": "vip"})
    stores = Stores("t1")
    stores.segments.finish_refresh(segment["id"], 4, segment_cases.utcnow().replace(year=2020))
    assert app_module.events.refresh_segments()["tenant_jobs"] == 1  # the hourly fan-out: t1's job queued

    class OutOfTime:  # the worker's function has time for the first page only
        calls = iter(range(100))

        def get_remaining_time_in_millis(self):
            return 10**9 if next(self.calls) < 1 else 0

    [message] = queue.folder().receive(1)
    assert app_module.run_jobs(sqs_event(message, "jobs", "eu-west-1"), OutOfTime())["outcome"] == "stepped"
    queue.folder().delete(message.receipt)
    cut = ddb_api.get(f"/v1/segments/{segment['id']}").data
    assert cut["needs_refresh"] is True
    assert run_queued_jobs() == 1  # the next step resumes the refresh where it stopped
    done = ddb_api.get(f"/v1/segments/{segment['id']}").data
    assert done["client_count"] == 6 and done["needs_refresh"] is False
    assert _members(ddb_api, segment["id"]) == ["C0", "C2", "C4", "C6", "C7", "C8"]
    [job] = job_cases.list_jobs(stores, "refresh_segments", 10, None)[0]
    assert job.status == "done" and job.step == 2 and job.result == {"segments_refreshed": 1}
