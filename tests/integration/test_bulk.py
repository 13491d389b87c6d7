"""Bulk actions on DynamoDB Local: the workers in parallel, counts exact after the stream, races with single writes."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.config import get_settings, reset_settings

pytestmark = pytest.mark.ddb


@pytest.fixture
def roomy_budget(live, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request budget of minutes: DynamoDB Local on a busy machine can be slower than the 20 s a request gets, and
    these tests are about counts (bench/bench_bulk.py measures the time; test_bulk_api.py the cut-off)."""
    monkeypatch.setenv("FUNCTION_TIMEOUT", "300")
    monkeypatch.setenv("DB_RETRY_BUDGET", "280")
    reset_settings()
    get_settings()


def _create(api, count: int, **fields) -> list[str]:
    def one(n: int) -> str:
        answer = api.post("/v1/clients", {"name": f"Client {n:04d}", **fields})
        assert answer.status_code == 201, answer.data
        return answer.data["id"]
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _clients_count(api, category_id: str) -> int:
    return api.get(f"/v1/categories/{category_id}").data["clients_count"]


def _recount(api, ids: list[str], category_id: str) -> int:
    """Non-archived clients carrying the category, read one by one."""
    clients = [api.get(f"/v1/clients/{cid}").data for cid in ids]
    return sum(category_id in c["category_ids"] and c["status"] != "archived" for c in clients)


def test_a_500_id_add_category_leaves_the_categorys_clients_count_exact(live, stream, roomy_budget):
    # 150 real clients (10 archived) and 350 unknown ids fill the 500: make bench measures 500 real ones.
    festival = live.post("/v1/categories", {"name": "Festival"}).data["id"]
    ids = _create(live, 150)
    for cid in ids[:10]:
        assert live.post(f"/v1/clients/{cid}/archive").status_code == 200
    stream.take()  # the creations: their effects are not what this test is about
    client_ids = ids + [f"missing-{n}" for n in range(350)]

    answer = live.post("/v1/clients/bulk", {"action": "add_category", "client_ids": client_ids,
                                               "params": {"category_id": festival}})

    assert answer.status_code == 200, answer.data
    assert [r["client_id"] for r in answer.data["results"]] == client_ids
    assert answer.data["succeeded"] == 150 and answer.data["failed"] == 350
    assert {r["error"]["code"] for r in answer.data["results"][150:]} == {"not_found"}
    stream.settle()
    assert _clients_count(live, festival) == 140  # archived clients carry it but are not counted
    assert _recount(live, ids, festival) == 140
    listed = live.get(f"/v1/clients?category_id={festival}&limit=100").data
    assert len(listed["items"]) == 100 and listed["next_cursor"]
    timeline = live.get(f"/v1/clients/{ids[20]}/activity").data["items"]
    assert timeline[0]["action"] == "updated" and timeline[0]["actor"] == "user-1"
    assert timeline[0]["changes"]["category_ids"] == {"from": [], "to": [festival]}


def test_bulk_and_single_writes_at_once_leave_counts_equal_to_a_recount(live, stream, roomy_budget):
    festival = live.post("/v1/categories", {"name": "Festival"}).data["id"]
    ids = _create(live, 45)
    stream.take()
    errors: list = []

    def bulk(action: str, chunk: list[str]) -> None:
        answer = live.post("/v1/clients/bulk", {"action": action, "client_ids": chunk,
                                                   "params": {"category_id": festival}})
        if answer.status_code != 200 or answer.data["failed"]:
            errors.append(answer.data.get("error") or [r for r in answer.data["results"] if not r["ok"]][:3])

    def single(cid: str, n: int) -> None:
        if n % 3 == 0:
            answer = live.post(f"/v1/clients/{cid}/archive")
        elif n % 3 == 1:
            answer = live.patch(f"/v1/clients/{cid}", {"category_ids": []})
        else:
            answer = live.patch(f"/v1/clients/{cid}", {"tags": [f"t{n}"]})
        if answer.status_code != 200:
            errors.append(answer.data)

    bulks = [threading.Thread(target=bulk, args=("add_category", ids)),
             threading.Thread(target=bulk, args=("remove_category", ids[36:]))]
    for t in bulks:
        t.start()
    with ThreadPoolExecutor(4) as pool:  # single writes from four other users meanwhile
        list(pool.map(single, ids[:24], range(24)))
    for t in bulks:
        t.join()

    assert errors == []
    stream.settle()
    assert _clients_count(live, festival) == _recount(live, ids, festival)
    tagged = [live.get(f"/v1/clients/{cid}").data for cid in ids[2:24:3]]
    assert all(c["tags"] == [f"t{2 + 3 * n}"] for n, c in enumerate(tagged))  # no single write was lost


def test_a_replayed_bulk_answers_the_first_result_with_the_workers_running(live, roomy_budget):
    ids = _create(live, 20)
    key = {"Idempotency-Key": "bulk-status-1"}
    body = {"action": "change_status", "client_ids": ids, "params": {"status": "trial"}}
    first = live.post("/v1/clients/bulk", body, headers=key)
    again = live.post("/v1/clients/bulk", body, headers=key)
    assert first.status_code == again.status_code == 200 and first.data["succeeded"] == 20
    assert again.data == first.data and again.headers.get("Idempotent-Replayed") == "true"
    versions = {live.get(f"/v1/clients/{cid}").data["version"] for cid in ids}
    assert versions == {2}  # changed once each, not again by the replay
    assert len(live.get("/v1/clients?status=trial&limit=100").data["items"]) == 20
