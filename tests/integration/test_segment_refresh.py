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
    from chalicelib.domain import job_cases, segment_refresh
    from chalicelib.local.job_queue import sqs_event
    from chalicelib.tables.stores import Stores
    from tests.api.conftest import run_queued_jobs

    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # the folder queue of this test
    reset_settings()
    get_settings()
    monkeypatch.setattr(segment_refresh, "PAGE", 2)
    for n in range(7):
        ddb_api.post("/v1/clients", {"name": f"C{n}", "pricing_tier": "vip" if n % 2 == 0 else "standard"})
    segment = ddb_api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP,
                                            "refresh_frequency": "manual"}).data
    assert segment["refreshing"] is True and segment["client_count"] == 2  # one page of 2 in the request
    assert run_queued_jobs() == 1
    ddb_api.patch(f"/v1/segments/{segment['id']}", {"refresh_frequency": "hourly"})
    for n in range(7, 9):
        ddb_api.post("/v1/clients", {"name": f"C{n}", "pricing_tier": "vip"})
    stores = Stores("t1")
    stores.segments.finish_refresh(segment["id"], 4, segment_cases.utcnow().replace(year=2020))
    assert app_module.events.refresh_segments()["tenant_jobs"] == 1  # the hourly fan-out: t1's job queued

    class OutOfTime:  # the worker's function has time for one page only
        calls = iter(range(100))

        def get_remaining_time_in_millis(self):
            return 10**9 if next(self.calls) < 1 else 0

    [message] = queue.folder().receive(1)  # t1's job: one refresh job per due segment
    assert app_module.run_jobs(sqs_event(message, "jobs", "eu-west-1"), None)["outcome"] == "done"
    queue.folder().delete(message.receipt)
    [message] = queue.folder().receive(1)  # the segment's refresh, cut off after one page
    assert app_module.run_jobs(sqs_event(message, "jobs", "eu-west-1"), OutOfTime())["outcome"] == "stepped"
    queue.folder().delete(message.receipt)
    cut = ddb_api.get(f"/v1/segments/{segment['id']}").data
    assert cut["refreshing"] is True and cut["needs_refresh"] is False and cut["refresh"]["processed"] == 2
    assert cut["refresh"]["total"] == 6
    assert run_queued_jobs() == 1  # the next step resumes the refresh where it stopped
    done = ddb_api.get(f"/v1/segments/{segment['id']}").data
    assert done["client_count"] == 6 and done["needs_refresh"] is False and done["refreshing"] is False
    assert done["refresh"]["status"] == "done" and done["refresh"]["processed"] == 6
    assert _members(ddb_api, segment["id"]) == ["C0", "C2", "C4", "C6", "C7", "C8"]
    [job] = job_cases.list_jobs(stores, "refresh_segments", 10, None)[0]
    assert job.status == "done" and job.step == 1 and job.result == {"segments_started": 1}
    refresh = job_cases.get_job(stores, segment_refresh.KIND, done["refresh"]["job_id"])
    assert refresh.status == "done" and refresh.step == 2 and refresh.processed == 6


@pytest.mark.parametrize("take_over", ["refresh", "criteria"])
def test_parallel_deliveries_and_a_refresh_taking_over_end_with_the_exact_members(ddb_api, monkeypatch, tmp_path,
                                                                                   take_over):
    from chalice.local import LambdaContext

    from chalicelib import queue
    from chalicelib.config import get_settings, reset_settings
    from chalicelib.domain import segment_refresh
    from chalicelib.local.job_queue import sqs_event
    from chalicelib.tables.stores import Stores
    from tests.integration.test_concurrent_writes import parallel

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    reset_settings()
    get_settings()
    monkeypatch.setattr(segment_refresh, "PAGE", 2)
    monkeypatch.setattr(segment_refresh, "PAGES_PER_STEP", 1)
    monkeypatch.setattr(segment_cases, "REFRESH_NOW_SECONDS", 0)
    for n in range(20):
        ddb_api.post("/v1/clients", {"name": f"C{n:02d}", "pricing_tier": "vip" if n % 2 == 0 else "standard",
                                     "payment_terms_days": 14 if n % 5 == 0 else 30})
    segment = ddb_api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP}).data
    assert segment["refreshing"] is True
    short = {"match": "all", "conditions": [{"field": "payment_terms_days", "operator": "less_than", "value": 20}]}
    context = LambdaContext("run_jobs", memory_size=512, max_runtime_ms=300_000)

    def taking_over():
        if take_over == "refresh":
            return segment_cases.refresh_now(Stores("t1"), segment["id"])
        return segment_cases.update_segment(Stores("t1"), segment["id"], {"criteria": short})

    def drain(times):  # every message handed to the worker `times` times at once, as SQS may
        folder = queue.folder()
        while got := folder.receive(1):
            event = sqs_event(got[0], "jobs", "eu-west-1")
            parallel([lambda e=event: app_module.run_jobs(e, context)] * times)
            folder.delete(got[0].receipt)

    [message] = queue.folder().receive(1)  # the first refresh's next step, three times, while a new one starts
    event = sqs_event(message, "jobs", "eu-west-1")
    parallel([lambda: app_module.run_jobs(event, context)] * 3 + [taking_over])
    queue.folder().delete(message.receipt)
    drain(2)
    expected = [f"C{n:02d}" for n in range(20) if (n % 2 == 0 if take_over == "refresh" else n % 5 == 0)]
    assert _members(ddb_api, segment["id"]) == expected
    done = ddb_api.get(f"/v1/segments/{segment['id']}").data
    assert done["client_count"] == len(expected) and done["refreshing"] is False
