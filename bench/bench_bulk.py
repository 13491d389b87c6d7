"""Bulk actions: 500 clients created, then 500-id `add_category` and `change_status` requests over HTTP."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from bench.common import Bench, Figure

CLIENTS = 500


class _Untraced(Figure):
    """A run timed without tracemalloc, which slows the server's Python about threefold: its time is the one a
    user meets; its memory is measured by the traced run of the same action."""

    def row(self) -> str:
        rate = self.items / self.seconds if self.seconds else 0
        return (f"| {self.name} | {self.items:,} | {self.seconds:.2f} s | {rate:,.0f}/s | {self.calls:,} | "
                f"(see traced row) | {self.notes} |")


def _untraced(b: Bench, name: str, items: int, run: Callable[[], Any], notes: str) -> Any:
    before, start = b.counter.count, time.perf_counter()
    result = run()
    b.figures.append(_Untraced(name, items, time.perf_counter() - start, b.counter.count - before, 0.0, notes))
    return result


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
    _untraced(b, "bulk: add_category, 500 ids", CLIENTS, add(theatre), "one request, another category; untraced")
    b.measure("bulk: change_status, 500 ids (traced)", CLIENTS, status("active"),
              "one request; status counters move too; time under tracemalloc")
    _untraced(b, "bulk: change_status, 500 ids", CLIENTS, status("trial"), "one request; untraced")
    _untraced(b, "bulk: add_category again (already held)", CLIENTS, add(festival), "reads only: nothing to write")
