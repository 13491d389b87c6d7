"""The benchmark harness: DynamoDB Local, the app served over HTTP in this process, call counts and peak memory."""
from __future__ import annotations

import contextlib
import os
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Figure:
    """One measured run: what was done, how long it took, DynamoDB calls made and the Python heap's peak."""

    name: str
    items: int
    seconds: float
    calls: int
    peak_mib: float | None  # None: timed without tracemalloc
    notes: str = ""

    def row(self) -> str:
        rate = self.items / self.seconds if self.seconds else 0
        peak = "(untraced)" if self.peak_mib is None else f"{self.peak_mib:.1f} MiB"
        return (f"| {self.name} | {self.items:,} | {self.seconds:.2f} s | {rate:,.0f}/s | {self.calls:,} | "
                f"{peak} | {self.notes} |")


HEADER = ("| run | items | time | rate | DynamoDB calls | peak memory | notes |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")


class CallCounter:
    """Counts DynamoDB API calls of every botocore client in this process."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[CallCounter]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counting(client, operation_name, api_params):
            if client.meta.service_model.service_name == "dynamodb":
                with counter._lock:
                    counter.count += 1
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counting
        try:
            yield self
        finally:
            BaseClient._make_api_call = original


@dataclass
class Bench:
    """A running app on its own DynamoDB Local; `measure` times one step of a benchmark."""

    base: str
    token: str
    counter: CallCounter
    figures: list[Figure] = field(default_factory=list)

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=600, **kw)

    def measure(self, name: str, items: int, run: Callable[[], Any], notes: str = "", traced: bool = True) -> Any:
        """Run `run` once, recording time, DynamoDB calls (server and client side alike) and peak heap. Untraced
        (no tracemalloc, which slows Python two to three times), the time is the one a caller waits."""
        before = self.counter.count
        if traced:
            tracemalloc.start()
        start = time.perf_counter()
        try:
            result = run()
        finally:
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else None
            if traced:
                tracemalloc.stop()
        self.figures.append(Figure(name, items, seconds, self.counter.count - before, peak, notes))
        return result


@contextlib.contextmanager
def running_app(tenant: str = "bench") -> Iterator[Bench]:
    """DynamoDB Local in memory (full JIT, as `make run` has it), a fresh table, and the app served by the local
    runtime's threaded server."""
    from chalicelib.local.dynamodb_local import DynamoDBLocal

    ddb = DynamoDBLocal(quick_start=False).start()
    env = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "eu-west-1",
           "DYNAMODB_ENDPOINT": ddb.endpoint, "TABLE_NAME": f"bench-{uuid.uuid4().hex[:8]}",
           "AUTH_JWT_SECRET": "bench-secret-of-enough-length-for-hs256", "AUTH_ISSUER": "nexusrms-local",
           "DATA_DIR": os.environ.get("BENCH_DATA_DIR", f"/tmp/nexus-bench-{uuid.uuid4().hex[:6]}")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server = None
    try:
        from chalicelib.config import reset_settings
        from chalicelib.tables import create_table, reset_connections

        reset_settings()
        reset_connections()
        create_table()
        import app as app_module
        from chalicelib.local.server import make_server
        from chalicelib.tokens import mint_token

        server = make_server(app_module.app, "127.0.0.1", 0)
        threading.Thread(target=server.server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server.server_address[1]}"
        counter = CallCounter()
        with counter.installed():
            yield Bench(base, mint_token(tenant, ["admin"], sub="bench-admin"), counter)
    finally:
        if server is not None:
            server.server.shutdown()
            server.server.server_close()
        ddb.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
