"""Counts kept by the stream on DynamoDB Local: exact after replays, reordering, partial failures and races."""
from __future__ import annotations

import threading

import pytest

import app as app_module
from chalicelib.domain import category_cases

pytestmark = pytest.mark.ddb


def _deliver(records: list[dict]) -> dict:
    return app_module.on_table_stream({"Records": records}, None)


def _count(api, category_id: str) -> int:
    return api.get(f"/v1/categories/{category_id}").data["clients_count"]


def _category(api, name: str) -> str:
    return api.post("/v1/categories", {"name": name}).data["id"]


def test_assigning_and_archiving_move_clients_count_exactly_even_when_a_batch_comes_twice(ddb_api, stream):
    festival = _category(ddb_api, "Festival")
    ids = [ddb_api.post("/v1/clients", {"name": f"C{n}", "category_ids": [festival]}).data["id"] for n in range(3)]
    ddb_api.patch(f"/v1/clients/{ids[2]}", {"category_ids": []})
    ddb_api.post(f"/v1/clients/{ids[0]}/archive")
    batch = stream.take()
    assert _count(ddb_api, festival) == 0  # nothing counted before the stream delivers
    for replay in (batch, batch, list(reversed(batch))):
        assert _deliver(replay) == {"batchItemFailures": []}
        assert _count(ddb_api, festival) == 1
    ddb_api.post(f"/v1/clients/{ids[0]}/restore")
    _deliver(stream.take())
    assert _count(ddb_api, festival) == 2


def test_a_partial_failure_reports_only_the_failed_records_and_their_retry_is_exact(ddb_api, stream, monkeypatch):
    fails, works = _category(ddb_api, "Fails"), _category(ddb_api, "Works")
    for n in range(2):
        ddb_api.post("/v1/clients", {"name": f"F{n}", "category_ids": [fails]})
    ddb_api.post("/v1/clients", {"name": "W", "category_ids": [works]})
    batch = stream.take()
    real = category_cases.recount

    def flaky(stores, category_id):
        if category_id == fails:
            raise RuntimeError("throttled")
        return real(stores, category_id)

    monkeypatch.setattr(category_cases, "recount", flaky)
    monkeypatch.setitem(app_module.stream.EFFECTS, "category_count", flaky)
    result = _deliver(batch)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    fails_records = {r["dynamodb"]["SequenceNumber"] for r in batch
                     if r["dynamodb"]["Keys"]["pk"]["S"].endswith(f"category={fails}")}
    assert failed == fails_records and len(failed) == 2
    assert _count(ddb_api, works) == 1 and _count(ddb_api, fails) == 0
    monkeypatch.setitem(app_module.stream.EFFECTS, "category_count", real)
    # Lambda retries from the lowest failed record: everything after it comes again.
    first = min(batch.index(r) for r in batch if r["dynamodb"]["SequenceNumber"] in failed)
    assert _deliver(batch[first:]) == {"batchItemFailures": []}
    assert _count(ddb_api, fails) == 2 and _count(ddb_api, works) == 1


def test_archive_and_restore_racing_leave_the_count_right_in_any_delivery_order(ddb_api, stream):
    festival = _category(ddb_api, "Festival")
    ids = [ddb_api.post("/v1/clients", {"name": f"C{n}", "category_ids": [festival]}).data["id"] for n in range(4)]

    def flip(client_id):
        for _ in range(3):
            ddb_api.post(f"/v1/clients/{client_id}/archive")
            ddb_api.post(f"/v1/clients/{client_id}/restore")
        ddb_api.post(f"/v1/clients/{client_id}/archive")

    threads = [threading.Thread(target=flip, args=(cid,)) for cid in ids[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batch = stream.take()
    for order in (list(reversed(batch)), batch[::2] + batch[1::2], batch):
        _deliver(order)
        assert _count(ddb_api, festival) == 2


def test_deleting_a_category_takes_it_off_its_clients_through_the_stream(ddb_api, stream):
    festival, keep = _category(ddb_api, "Festival"), _category(ddb_api, "Keep")
    client = ddb_api.post("/v1/clients", {"name": "Acme", "category_ids": [festival, keep]}).data
    assert ddb_api.call("DELETE", f"/v1/categories/{festival}").status_code == 204
    batch = stream.take()
    for _ in range(2):  # delivered twice: the second delivery changes nothing more
        assert _deliver(batch) == {"batchItemFailures": []}
    after = ddb_api.get(f"/v1/clients/{client['id']}").data
    assert after["category_ids"] == [keep] and after["version"] == client["version"] + 1
    _deliver(stream.take())
    assert _count(ddb_api, keep) == 1
