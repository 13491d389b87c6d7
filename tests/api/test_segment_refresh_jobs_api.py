"""Segment refreshes as jobs on moto: reads proportional to the candidates the criteria select, answers at once
with `refreshing`, progress on the segment, members leaving, and redelivered or concurrent refreshes converging."""
from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from botocore.client import BaseClient
from ulid import ULID

from chalicelib import queue
from chalicelib.domain import job_cases, segment_cases, segment_refresh
from chalicelib.domain.client_cases import build_client
from chalicelib.domain.clients import FacetRules
from chalicelib.domain.values import utcnow
from chalicelib.tables.items import ClientItem
from chalicelib.tables.stores import Stores
from tests.api.conftest import run_queued_jobs

VIP = {"match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}


def _when(field, operator, value):
    return {"match": "all", "conditions": [{"field": field, "operator": operator, "value": value}]}


def load(n: int, vip_every: int, tenant: str = "t1") -> list[str]:
    """`n` clients written as their creates would write them (ClientRepository.load_items), in batches: every
    `vip_every`-th one `vip`, the others `standard`, terms 10, 20, 30 ... days. Answers their ids, in order."""
    stores = Stores(tenant)
    settings, thresholds, at = stores.settings.get("client"), stores.settings.get("lead-score-thresholds"), utcnow()
    clients = []
    for k in range(n):
        data = {"name": f"C{k:04d}", "pricing_tier": "vip" if k % vip_every == 0 else "standard",
                "payment_terms_days": 10 * (k % 9 + 1)}
        client = build_client(data, tenant_id=tenant, actor=None, client_settings=settings, thresholds=thresholds,
                              defs=[], at=at)
        clients.append(client.model_copy(update={"id": str(ULID()), "client_number": f"CLT-T-{k:010d}"}))
    with ClientItem.batch_write() as batch:
        for item in stores.clients.load_items(clients, FacetRules.of(settings, at)):
            batch.save(item)
    return [c.id for c in clients]


@contextlib.contextmanager
def counted() -> Iterator[Counter]:
    """DynamoDB calls by operation of every botocore client, and `clients_read`: the client keys BatchGetItem
    asked for."""
    seen: Counter = Counter()
    original = BaseClient._make_api_call

    def counting(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb":
            seen[operation] += 1
            if operation == "BatchGetItem":
                seen["clients_read"] += sum(key["sk"]["S"] == "A#CLIENT" for table in params["RequestItems"].values()
                                            for key in table["Keys"])
        return original(client, operation, params)

    BaseClient._make_api_call = counting
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original


def calls(seen: Counter) -> int:
    return sum(n for name, n in seen.items() if name != "clients_read")


def members(api, segment_id) -> list[str]:
    found, cursor = [], ""
    while True:
        page = api.get(f"/v1/segments/{segment_id}/members?limit=100{cursor}").data
        found += [m["name"] for m in page["items"]]
        if not page["next_cursor"]:
            return sorted(found)
        cursor = f"&cursor={page['next_cursor']}"


def segment(api, segment_id) -> dict:
    return api.get(f"/v1/segments/{segment_id}").data


def names(ids_and_names: list[int]) -> list[str]:
    return sorted(f"C{k:04d}" for k in ids_and_names)


def test_a_vip_refresh_reads_only_the_clients_of_the_vip_partition(api):
    load(150, vip_every=30)  # 5 vip clients among 150
    with counted() as seen:
        answer = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP})
    assert answer.status_code == 201 and answer.data["client_count"] == 5 and answer.data["refreshing"] is False
    assert seen["clients_read"] == 5  # the candidates, not the tenant's 150
    assert calls(seen) <= 20, seen
    assert answer.data["refresh"]["status"] == "done" and answer.data["refresh"]["processed"] == 5
    assert answer.data["refresh"]["total"] == 5
    with counted() as again:
        refreshed = api.post(f"/v1/segments/{answer.data['id']}/refresh").data
    assert refreshed["client_count"] == 5 and again["clients_read"] == 5 and "TransactWriteItems" not in again
    assert members(api, answer.data["id"]) == names(range(0, 150, 30))


def test_a_criterion_no_facet_selects_is_refreshed_by_the_bounded_walk_over_every_live_client(api, monkeypatch):
    monkeypatch.setattr(segment_refresh, "PAGE", 20)
    monkeypatch.setattr(segment_refresh, "PAGES_PER_STEP", 3)
    load(130, vip_every=50)
    with counted() as seen:
        created = api.post("/v1/segments", {"name": "Long terms", "type": "dynamic",
                                            "criteria": _when("payment_terms_days", "greater_than", 80)}).data
    assert created["refreshing"] is True and seen["clients_read"] == 20  # one page in the request
    assert created["refresh"] == {**created["refresh"], "status": "running", "processed": 20, "total": 130}
    with counted() as rest:
        assert run_queued_jobs() == 2  # 110 clients more: a step of 3 pages (60 entries), then the last 50
    assert rest["clients_read"] == 110
    done = segment(api, created["id"])
    assert done["refreshing"] is False and done["client_count"] == 14 and done["needs_refresh"] is False
    assert done["refresh"]["status"] == "done" and done["refresh"]["processed"] == 130
    assert done["last_refreshed_at"] is not None and done["refresh"]["finished_at"] is not None
    assert members(api, created["id"]) == names(k for k in range(130) if k % 9 == 8)


def test_create_and_criteria_changes_answer_refreshing_and_the_members_appear_after_the_job_runs(api, monkeypatch):
    monkeypatch.setattr(segment_refresh, "PAGE", 2)
    load(40, vip_every=5)  # 8 vip clients
    created = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP})
    assert created.status_code == 201 and created.data["refreshing"] is True
    assert created.data["needs_refresh"] is False and created.data["last_refreshed_at"] is None
    assert created.data["refresh"]["status"] == "running" and created.data["refresh"]["processed"] == 2
    assert created.data["refresh"]["total"] == 8 and len(members(api, created.data["id"])) == 2
    run_queued_jobs()
    done = segment(api, created.data["id"])
    assert done["refreshing"] is False and done["client_count"] == 8
    assert members(api, created.data["id"]) == names(range(0, 40, 5))

    changed = api.patch(f"/v1/segments/{created.data['id']}", {"criteria": _when("payment_terms_days", "equals", 10)})
    assert changed.status_code == 200 and changed.data["refreshing"] is True
    assert changed.data["refresh"]["job_id"] != done["refresh"]["job_id"]
    run_queued_jobs()
    after = segment(api, created.data["id"])
    assert after["refreshing"] is False and after["client_count"] == 5
    assert members(api, created.data["id"]) == names(range(0, 40, 9))
    renamed = api.patch(f"/v1/segments/{created.data['id']}", {"name": "Short terms"}).data
    assert renamed["refresh"] == after["refresh"] and renamed["refreshing"] is False  # no criteria: no refresh


def test_members_leaving_the_criteria_are_removed_also_outside_the_candidates(api):
    ids = load(60, vip_every=10)
    vip = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP,
                                    "refresh_frequency": "manual"}).data
    assert vip["client_count"] == 6
    api.patch(f"/v1/clients/{ids[10]}", {"pricing_tier": "standard"})  # no longer a candidate
    api.post(f"/v1/clients/{ids[20]}/archive")
    api.patch(f"/v1/clients/{ids[1]}", {"pricing_tier": "vip"})
    with counted() as seen:
        refreshed = api.post(f"/v1/segments/{vip['id']}/refresh").data
    assert refreshed["client_count"] == 5 and refreshed["refreshing"] is False
    assert seen["clients_read"] == 6  # 5 candidates, and the member that left the partition, checked
    assert members(api, vip["id"]) == names([0, 1, 30, 40, 50])


def test_a_segment_of_tags_or_of_any_facet_reads_their_partitions_only(api):
    ids = load(50, vip_every=10)
    for k in (3, 4):
        api.patch(f"/v1/clients/{ids[k]}", {"tags": ["Festival"]})
    with counted() as seen:
        tagged = api.post("/v1/segments", {"name": "Fest", "type": "dynamic",
                                           "criteria": _when("tags", "contains", "festival")}).data
    assert tagged["client_count"] == 2 and seen["clients_read"] == 2 and tagged["refresh"]["total"] is None
    criteria = {"match": "any", "conditions": [{"field": "tags", "operator": "in", "value": ["FESTIVAL"]},
                                               {"field": "pricing_tier", "operator": "equals", "value": "vip"}]}
    with counted() as seen:
        either = api.post("/v1/segments", {"name": "Either", "type": "dynamic", "criteria": criteria}).data
    assert either["client_count"] == 7 and seen["clients_read"] == 7
    archived = api.post("/v1/segments", {"name": "Archived", "type": "dynamic",
                                         "criteria": _when("status", "equals", "archived")}).data
    assert archived["client_count"] == 0 and archived["refresh"]["total"] == 0


def test_a_job_delivered_twice_and_refreshes_started_at_once_end_with_the_exact_members(api, monkeypatch):
    monkeypatch.setattr(segment_refresh, "PAGE", 3)
    monkeypatch.setattr(segment_refresh, "PAGES_PER_STEP", 1)
    monkeypatch.setattr(segment_cases, "REFRESH_NOW_SECONDS", 0)  # a POST .../refresh runs one page, too
    load(60, vip_every=4)  # 15 vip clients
    created = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP}).data
    first = created["refresh"]["job_id"]
    again = api.post(f"/v1/segments/{created['id']}/refresh").data  # a second refresh while the first runs
    assert again["refreshing"] is True and again["refresh"]["job_id"] != first
    for step in range(1, 3):  # SQS delivers some messages twice
        queue.send({"tenant_id": "t1", "kind": segment_refresh.KIND, "job_id": again["refresh"]["job_id"],
                    "step": step})
    run_queued_jobs()
    done = segment(api, created["id"])
    assert done["refreshing"] is False and done["client_count"] == 15 and done["refresh"]["processed"] == 15
    assert members(api, created["id"]) == names(range(0, 60, 4))
    stores = Stores("t1")
    assert job_cases.get_job(stores, segment_refresh.KIND, first).result["outcome"] == "superseded"
    assert job_cases.get_job(stores, segment_refresh.KIND, again["refresh"]["job_id"]).status == "done"
    for job_id in (first, again["refresh"]["job_id"]):  # every message of both jobs once more: nothing changes
        job = job_cases.get_job(stores, segment_refresh.KIND, job_id)
        for step in range(job.step + 1):
            queue.send({"tenant_id": "t1", "kind": segment_refresh.KIND, "job_id": job_id, "step": step})
    run_queued_jobs()
    assert segment(api, created["id"]) == done and members(api, created["id"]) == names(range(0, 60, 4))


def test_a_criteria_change_while_a_refresh_runs_stops_it_and_the_new_criteria_win(api, monkeypatch):
    monkeypatch.setattr(segment_refresh, "PAGE", 2)
    monkeypatch.setattr(segment_refresh, "PAGES_PER_STEP", 1)
    load(30, vip_every=3)
    created = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP}).data
    assert created["refreshing"] is True
    api.patch(f"/v1/segments/{created['id']}", {"criteria": _when("payment_terms_days", "less_than", 30)})
    run_queued_jobs()
    assert members(api, created["id"]) == names(k for k in range(30) if k % 9 < 2)
    assert segment(api, created["id"])["client_count"] == 8


def test_a_refresh_of_a_deleted_segment_ends_without_writing(api, monkeypatch):
    monkeypatch.setattr(segment_refresh, "PAGE", 2)
    load(20, vip_every=2)
    created = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP}).data
    assert api.call("DELETE", f"/v1/segments/{created['id']}").status_code == 204
    before = Stores("t1").segments.count_members(created["id"])
    run_queued_jobs()
    job = job_cases.get_job(Stores("t1"), segment_refresh.KIND, created["refresh"]["job_id"])
    assert job.status == "done" and job.result["outcome"] == "deleted"
    assert Stores("t1").segments.count_members(created["id"]) == before == 2


def test_the_hourly_schedule_refreshes_each_due_segment_as_its_own_job_once(api, monkeypatch):
    import app as app_module

    monkeypatch.setattr(segment_refresh, "PAGE", 2)
    ids = load(10, vip_every=2)
    hourly = api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "criteria": VIP,
                                       "refresh_frequency": "hourly"}).data
    manual = api.post("/v1/segments", {"name": "Manual", "type": "dynamic", "criteria": VIP,
                                       "refresh_frequency": "manual"}).data
    run_queued_jobs()
    api.patch(f"/v1/clients/{ids[1]}", {"pricing_tier": "vip"})
    event = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "0",
             "time": "2099-05-01T10:00:03Z", "region": "eu-west-1", "resources": ["arn:...:rule/refresh_segments"],
             "detail": {}}
    app_module.refresh_segments(event, None)
    app_module.refresh_segments(event, None)  # delivered twice
    run_queued_jobs()
    stores = Stores("t1")
    [tenant_job] = job_cases.list_jobs(stores, "refresh_segments", 10, None)[0]
    assert tenant_job.status == "done" and tenant_job.result == {"segments_started": 1}
    refreshed = segment(api, hourly["id"])
    assert refreshed["client_count"] == 6 and refreshed["refresh"]["job_id"] == f"{tenant_job.id}-{hourly['id']}"
    assert refreshed["last_refreshed_at"].startswith("2099-05-01T10:00:03")
    assert segment(api, manual["id"])["client_count"] == 5  # manual segments wait for POST .../refresh
    assert refreshed["needs_refresh"] is False and refreshed["refreshing"] is False


def test_refreshes_driven_by_a_group_or_by_the_high_value_list_read_only_their_partitions(api):
    ids = load(20, vip_every=4)  # 5 vip clients
    api.patch(f"/v1/clients/{ids[1]}", {"pricing_tier": "preferred"})
    with counted() as seen:
        either = api.post("/v1/segments", {"name": "Either", "type": "dynamic",
                                           "criteria": _when("pricing_tier", "in", ["vip", "preferred"])}).data
    assert members(api, either["id"]) == names([0, 1, 4, 8, 12, 16]) and seen["clients_read"] == 6
    with counted() as seen:  # lifetime revenue over the high-value threshold (10,000): the `highvalue` list
        rich = api.post("/v1/segments", {"name": "Rich", "type": "dynamic",
                                         "criteria": _when("lifetime_revenue", "greater_than", "20000")}).data
    assert rich["client_count"] == 0 and rich["refresh"]["total"] == 0 and seen["clients_read"] == 0
