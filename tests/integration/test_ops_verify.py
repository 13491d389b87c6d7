"""The ops jobs on DynamoDB Local: verify_tenant names each corrupted figure, recount_tenant repairs them once."""
from __future__ import annotations

import signal
import time

import pytest

from chalicelib.domain import job_cases, ops_cases
from chalicelib.domain.clients import search_text
from chalicelib.domain.jobs import Job
from chalicelib.domain.search import index_terms
from chalicelib.tables import keys
from chalicelib.tables.items import ClientNumberItem, DayCount, FacetCount, FacetEntry, SearchEntry
from chalicelib.tables.stores import Stores
from tests.audit import assert_consistent, audit
from tests.integration.test_faults_audit import Burst, _retry_unanswered, _setup, own  # noqa: F401 - a fixture

pytestmark = pytest.mark.ddb
T = "t1"


def _run(job: Job) -> Job:
    job = job_cases.run_inline(Stores(T), job, lambda: False)
    assert job.status == "done", job.error
    return job


def verify() -> Job:
    return _run(ops_cases.start_verify(Stores(T), enqueue=False))


def recount() -> Job:
    return _run(ops_cases.start_recount(Stores(T), enqueue=False))


def _named(job: Job) -> set[tuple[str, str, str]]:
    return {(e["check"], e["subject"], e["message"]) for e in job.errors}


def _tenant(api, stream) -> dict:
    """Clients of every status, several tiers, types, tags and categories, archived ones, a static and a dynamic
    segment, contacts with a primary and threaded communications; the stream settled."""
    cats = [api.post("/v1/categories", {"name": n}).data["id"] for n in ("Venues", "Caterers", "Empty")]
    picked = api.post("/v1/segments", {"name": "Picked", "type": "static"}).data["id"]
    ids = []
    for n, status in enumerate(["lead", "trial", "active", "inactive", "active", "lead", "active", "trial"]):
        ids.append(api.post("/v1/clients?allow_duplicate=true", {  # one domain: possible duplicates all
            "name": f"Client {n}", "status": status, "pricing_tier": ("standard", "vip", "preferred")[n % 3],
            "type": ("company", "individual")[n % 2], "category_ids": [cats[n % 2]] + ([cats[1]] if n == 4 else []),
            "tags": ["x"] if n % 2 else [], "email": f"c{n}@acme.test"}).data["id"])
    api.post("/v1/segments", {"name": "VIPs", "type": "dynamic", "refresh_frequency": "realtime", "criteria": {
        "match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}})
    contact = api.post(f"/v1/clients/{ids[0]}/contacts", {"full_name": "Pat Doe", "email": "pat@acme.test"}).data
    api.post(f"/v1/clients/{ids[0]}/contacts", {"full_name": "Sam Roe", "email": "sam@acme.test"})
    api.post(f"/v1/clients/{ids[0]}/contacts/{contact['id']}/make-primary")
    for n, direction in enumerate(("inbound", "outbound", "inbound")):
        assert api.post(f"/v1/clients/{ids[1]}/communications", {
            "type": "email", "direction": direction, "subject": "Quote", "body": f"message {n}",
            "from_email": "jo@c1.test", "to_email": "office@acme.test",
            "occurred_at": f"2026-11-0{n + 1}T10:00:00Z"}).status_code == 201
    api.post(f"/v1/segments/{picked}/members", {"client_id": ids[2]})
    api.post(f"/v1/segments/{picked}/members", {"client_id": ids[3]})
    for cid in (ids[3], ids[4]):
        assert api.post(f"/v1/clients/{cid}/archive").status_code == 200
    stream.settle()
    return {"ids": ids, "categories": cats, "clients": {c: api.get(f"/v1/clients/{c}").data for c in ids}}


def _corrupt(world: dict) -> set[tuple[str, str, str]]:
    """Six figures broken behind the app's back; the differences verify must name for them."""
    a, b, c = (world["clients"][world["ids"][n]] for n in (0, 1, 2))
    ClientNumberItem(keys.client_number_pk(T, a["client_number"]), keys.UNIQUE_SK).delete()
    FacetEntry(keys.facet_pk(T, "tier", "vip"), b["id"]).delete()  # client 1 is vip
    FacetCount(keys.facet_pk(T, "type", "company"), keys.count_sk(2)).update(
        actions=[FacetCount.n.add(3), FacetCount.kind.set(FacetCount)])
    client_c = Stores(T).clients.get(c["id"])
    terms = index_terms(search_text(client_c))
    gone = sorted(terms)[0]
    SearchEntry(keys.search_pk(T, "client", gone), c["id"]).delete()
    Stores(T).categories.set_clients_count(world["categories"][0], 9)
    day = c["created_at"][:10]
    DayCount(keys.created_counts_pk(T), keys.day_count_sk(day, 5)).update(
        actions=[DayCount.n.add(-2), DayCount.kind.set(DayCount)])
    companies = sum(1 for x in world["clients"].values() if x["type"] == "company" and x["status"] != "archived")
    carried = sum(1 for x in world["clients"].values()
                  if world["categories"][0] in x["category_ids"] and x["status"] != "archived")
    created = sum(1 for x in world["clients"].values() if x["created_at"][:10] == day and x["status"] != "archived")
    return {
        ("client_number", a["id"], f"number item {a['client_number']} missing"),
        ("facet_entry", b["id"], "tier=vip: missing"),
        ("counter", "type=company", f"shards sum to {companies + 3}, recount {companies}"),
        ("search_terms", c["id"], f"1 of {len(terms)} terms missing: {gone}"),
        ("category_count", world["categories"][0], f"clients_count 9, recount {carried}"),
        ("day_counter", day, f"counters sum to {created - 2}, recount {created}"),
    }


def test_a_consistent_tenant_verifies_without_a_difference_and_its_progress_is_known_from_the_start(ddb_api, stream):
    _tenant(ddb_api, stream)
    assert_consistent(T)
    started = ops_cases.start_verify(Stores(T), enqueue=False)
    assert started.total == 8  # six live clients (their statuses' counters) and two archived entries
    job = _run(started)
    assert job.errors == [] and job.result["differences"] == 0
    assert job.result["clients"] == 8 and job.processed == job.total == 8


def test_verify_names_each_corruption_and_recount_repairs_them_once(ddb_api, stream):
    world = _tenant(ddb_api, stream)
    expected = _corrupt(world)
    assert len(audit(T).problems) >= 6
    found = verify()
    assert _named(found) == expected
    assert found.result["differences"] == 6

    repaired = recount()
    assert _named(repaired) == expected
    assert {k: v for k, v in repaired.result.items() if k in ops_cases.FIXES and v} == {
        "number_items": 1, "facet_entries": 1, "search_terms": 1, "counters": 1, "day_counters": 1,
        "category_counts": 1}
    stream.settle()
    assert verify().errors == []
    before = assert_consistent(T).snapshot

    again = recount()
    assert again.errors == [] and not any(again.result[k] for k in ops_cases.FIXES)
    stream.settle()
    assert assert_consistent(T).snapshot == before


def test_recount_drops_extra_entries_rewrites_a_wrong_live_flag_and_an_orphan_entry(ddb_api, stream):
    world = _tenant(ddb_api, stream)
    archived, active = world["ids"][3], world["ids"][2]
    live_entry = FacetEntry(keys.facet_pk(T, "live", "1"), archived, client_id=archived, live=True, search="x",
                            created_at="2026-01-01", s_name="x", s_created="x", s_health="x")
    live_entry.save()  # an archived client listed as live
    FacetEntry(keys.facet_pk(T, "status", "lead"), active, client_id=active, live=True, search="x",
               created_at="2026-01-01", s_name="x", s_created="x", s_health="x").save()  # a second status entry
    FacetEntry(keys.facet_pk(T, "tier", "vip"), world["ids"][1]).update(actions=[FacetEntry.live.set(False)])
    FacetEntry(keys.facet_pk(T, "status", "trial"), "01NOSUCHCLIENT0000000000", client_id="01NOSUCHCLIENT0000000000",
               live=True, search="x", created_at="2026-01-01", s_name="x", s_created="x", s_health="x").save()
    assert _named(verify()) == {
        ("facet_entry", archived, "live=1: extra: not implied by the client"),
        ("facet_entry", active, "status=lead: extra: not implied by the client"),
        ("facet_entry", world["ids"][1], "tier=vip: live=False, expected True"),
        ("facet_entry", "01NOSUCHCLIENT0000000000", "status=trial: entry of a client that does not exist"),
    }
    repaired = recount()
    assert (repaired.result["facet_entries"], repaired.result["orphan_entries"]) == (3, 1)
    assert repaired.result["clients"] == 8  # the client with two status entries counted once
    stream.settle()
    assert verify().errors == []
    assert_consistent(T)


def test_a_job_cut_into_many_steps_finds_what_one_step_finds(ddb_api, stream, monkeypatch):
    _corrupt(_tenant(ddb_api, stream))
    whole = verify()
    monkeypatch.setattr(ops_cases, "PAGE", 3)
    cut = verify()
    assert (whole.step, cut.step) == (2, 4)  # 8 clients: one page and the final step, or three pages and it
    assert cut.errors == whole.errors and cut.result == whole.result


def test_the_job_item_keeps_few_differences_and_counts_the_rest(ddb_api, stream, monkeypatch):
    world = _tenant(ddb_api, stream)
    monkeypatch.setattr(ops_cases, "MAX_REPORTED", 2)
    monkeypatch.setattr(ops_cases, "PAGE", 3)
    for cid in world["ids"]:
        number = world["clients"][cid]["client_number"]
        ClientNumberItem(keys.client_number_pk(T, number), keys.UNIQUE_SK).delete()
    job = verify()
    assert len(job.errors) == 2
    assert (job.result["differences"], job.result["unreported"]) == (8, 6)


def test_a_tenant_after_a_database_frozen_mid_burst_verifies_without_a_difference(own, monkeypatch):  # noqa: F811
    categories = _setup(own)
    with Burst(own.live, categories) as burst:
        time.sleep(1.5)
        own.signal(signal.SIGSTOP)
        time.sleep(4)
        own.signal(signal.SIGCONT)
        time.sleep(1.0)
    burst.check_answers()
    _retry_unanswered(own.live, burst, monkeypatch)
    own.tap("after-freeze").settle()
    clients = len(assert_consistent(T).clients)
    job = verify()
    assert job.errors == [] and job.result == {"clients": clients, "differences": 0, "unreported": 0}
