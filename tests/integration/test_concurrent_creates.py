"""Parallel creates, make-primary calls, bulk actions and stream deliveries on DynamoDB Local: the audit holds."""
from __future__ import annotations

import random
import threading

import pytest

import app as app_module
from tests.audit import assert_consistent
from tests.ddb_local import own_ddb_endpoint
from tests.integration.test_concurrent_writes import parallel

pytestmark = pytest.mark.ddb
# Parallel transactions time out on a DynamoDB Local slowed by what earlier tests wrote: this module's own.
ddb_endpoint = pytest.fixture(scope="module")(own_ddb_endpoint)


@pytest.fixture
def few_numbers(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Client numbers drawn from 40 values: parallel creates collide on them and must draw again."""
    from chalicelib.domain import clients

    pool = {f"CLT-2026-000000{n:04x}" for n in range(40)}
    monkeypatch.setattr(clients, "generate_number", lambda prefix, now: random.choice(sorted(pool)))
    return pool


def test_twenty_parallel_creates_get_twenty_distinct_numbers_each_with_its_number_item(live, few_numbers):
    answers = parallel([lambda n=n: live.call("POST", "/v1/clients", {"name": f"Client {n}"}) for n in range(20)])
    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers if a.status_code != 201]
    numbers = [a.data["client_number"] for a in answers]
    assert len(set(numbers)) == 20 and set(numbers) <= few_numbers
    found = assert_consistent()  # each client with its own number item, no number item without its client
    assert {c.client_number for c in found.clients.values()} == set(numbers)


def test_parallel_idempotent_creates_with_one_key_create_one_client(live):
    key = {"Idempotency-Key": "create-once"}
    answers = parallel([lambda: live.call("POST", "/v1/clients", {"name": "Once"}, headers=key) for _ in range(4)])
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}, [a.text for a in answers]
    assert len({a.data["id"] for a in answers if a.status_code == 201}) == 1  # replays answer the same client
    assert all(a.data["error"]["code"] == "idempotency_in_progress" for a in answers if a.status_code == 409)
    assert len(assert_consistent().clients) == 1


def test_parallel_make_primary_of_different_contacts_leaves_exactly_one_primary(live):
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    base = f"/v1/clients/{client['id']}/contacts"
    ids = [live.ok("POST", base, {"full_name": f"Pat {n}", "email": f"pat{n}@acme.test"}, status=201)["id"]
           for n in range(6)]
    answers = parallel([lambda cid=cid: live.call("POST", f"{base}/{cid}/make-primary") for cid in ids])
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers if a.status_code != 200]
    contacts = live.ok("GET", f"{base}?limit=100")["items"]
    primaries = [c["id"] for c in contacts if c["is_primary"]]
    assert len(primaries) == 1
    assert live.ok("GET", f"/v1/clients/{client['id']}")["primary_contact"]["id"] == primaries[0]
    assert_consistent()


def test_parallel_bulk_actions_and_stream_deliveries_leave_every_counter_equal_to_a_recount(live, stream):
    cats = [live.ok("POST", "/v1/categories", {"name": n}, status=201)["id"] for n in ("Venues", "Caterers")]
    segment = live.ok("POST", "/v1/segments", {"name": "Picked", "type": "static"}, status=201)["id"]
    ids = [a.data["id"] for a in parallel([lambda n=n: live.call("POST", "/v1/clients", {
        "name": f"C{n}", "category_ids": [cats[n % 2]], "pricing_tier": "vip" if n % 3 == 0 else "standard"})
        for n in range(24)])]
    stop, failures = threading.Event(), []

    def redeliver() -> None:
        """The stream's batches as they come, each delivered twice at once (Lambda's at-least-once)."""
        while not stop.is_set():
            batch = stream.take()
            if batch:
                results = parallel([lambda b=batch: app_module.on_table_stream({"Records": b}, None)] * 2)
                failures.extend(r for r in results if r["batchItemFailures"])

    pump = threading.Thread(target=redeliver)
    pump.start()
    try:
        bulk = [("add_category", ids, {"category_id": cats[0]}),
                ("remove_category", ids[::3], {"category_id": cats[1]}), ("archive", ids[:8], {}),
                ("restore", ids[4:6], {}), ("change_status", ids[10:], {"status": "inactive"}),
                ("add_tag", ids[::2], {"tag": "hot"}), ("add_to_segment", ids[8:18], {"segment_id": segment})]
        answers = parallel([lambda a=a, c=c, p=p: live.call("POST", "/v1/clients/bulk", {
            "action": a, "client_ids": c, "params": p}) for a, c, p in bulk]
            + [lambda cid=cid: live.call("PATCH", f"/v1/clients/{cid}", {"pricing_tier": "vip"}) for cid in ids[18:]])
    finally:
        stop.set()
        pump.join(60)
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers if not a.ok]
    refused = [(b[0], r["error"])
               for a, b in zip(answers, bulk, strict=False) for r in a.data["results"] if not r["ok"]]
    assert refused == []
    assert failures == []
    stream.settle()
    found = assert_consistent()
    assert found.snapshot["chips"]["all"] == len([c for c in found.clients.values() if not c.is_archived])
    assert live.ok("GET", "/v1/clients/chips") == found.snapshot["chips"]
