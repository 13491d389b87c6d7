"""Bulk actions on DynamoDB Local: the workers in parallel, counts exact after the stream, races with single writes."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from chalicelib.config import get_settings, reset_settings
from chalicelib.tokens import mint_token
from tests.api.conftest import ENV

pytestmark = pytest.mark.ddb


class Live:
    """The app served over HTTP by the local runtime's threaded server (Chalice's test client is not thread-safe:
    parallel bodies get mixed up), answering like Api: `.status_code` and `.data`."""

    def __init__(self, base: str):
        self.base = base
        self.headers = {"Authorization": f"Bearer {mint_token('t1', ['admin'], sub='user-1')}"}

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> requests.Response:
        answer = requests.request(method, self.base + path, json=body, headers={**self.headers, **(headers or {})},
                                  timeout=120)
        answer.data = answer.json() if answer.content else None
        return answer

    def get(self, path: str) -> requests.Response:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, headers: dict | None = None) -> requests.Response:
        return self.call("POST", path, body, headers)

    def patch(self, path: str, body: Any = None) -> requests.Response:
        return self.call("PATCH", path, body)


@pytest.fixture
def live(ddb_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    import app as app_module
    from chalicelib.local.server import make_server

    for key in ("AUTH_JWT_SECRET", "AUTH_ISSUER"):
        monkeypatch.setenv(key, ENV[key])
    reset_settings()
    get_settings()
    server = make_server(app_module.app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server.server_address[1]}")
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(10)


@pytest.fixture
def roomy_budget(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
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
