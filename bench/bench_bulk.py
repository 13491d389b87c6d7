"""Bulk actions: 500 clients created, then 500-id `add_category` and `change_status` requests over HTTP."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.common import Bench

CLIENTS = 500


def _create(b: Bench, n: int) -> str:
    answer = b.call("POST", "/v1/clients", json={"name": f"Bench client {n:04d}", "status": "lead"})
    answer.raise_for_status()
    return answer.json()["id"]


def _bulk(b: Bench, body: dict) -> dict:
    answer = b.call("POST", "/v1/clients/bulk", json=body)
    answer.raise_for_status()
    result = answer.json()
    if result["succeeded"] != len(body["client_ids"]):
        raise AssertionError(f"{result['failed']} clients failed: {result['results'][:3]}")
    return result


def run(b: Bench) -> None:
    def create_all() -> list[str]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda n: _create(b, n), range(CLIENTS)))

    ids = b.measure("bulk: create the clients (8 parallel POSTs)", CLIENTS, create_all, "setup, for scale")
    festival, theatre = (b.call("POST", "/v1/categories", json={"name": name}).json()["id"]
                         for name in ("Festival", "Theatre"))

    def add(category: str) -> Callable[[], dict]:
        return lambda: _bulk(b, {"action": "add_category", "client_ids": ids, "params": {"category_id": category}})

    def status(value: str) -> Callable[[], dict]:
        return lambda: _bulk(b, {"action": "change_status", "client_ids": ids, "params": {"status": value}})

    b.measure("bulk: add_category, 500 ids (traced)", CLIENTS, add(festival), "one request; time under tracemalloc")
    b.measure("bulk: add_category, 500 ids", CLIENTS, add(theatre), "one request, another category; untraced",
              traced=False)
    b.measure("bulk: change_status, 500 ids (traced)", CLIENTS, status("active"),
              "one request; status counters move too; time under tracemalloc")
    b.measure("bulk: change_status, 500 ids", CLIENTS, status("trial"), "one request; untraced", traced=False)
    b.measure("bulk: add_category again (already held)", CLIENTS, add(festival), "reads only: nothing to write",
              traced=False)
