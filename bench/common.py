"""The benchmark harness: DynamoDB Local, the app served over HTTP in this process, call counts and peak memory."""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from bench.calls import Counting


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


@dataclass
class Bench:
    """A running app on its own DynamoDB Local; `measure` times one step of a benchmark."""

    base: str
    token: str
    counter: Counting
    endpoint: str  # DynamoDB Local's
    table: str
    figures: list[Figure] = field(default_factory=list)
    gateway: Any = None  # API Gateway's local stand-in, made on the first `invoke`

    def invoke(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON answer) of a route called in this process as Lambda calls it: an API Gateway event handed to
        the app, no HTTP (what the app adds to its DynamoDB calls, without a local server's and client's share)."""
        if self.gateway is None:
            from chalice.config import Config

            import app as app_module
            from chalicelib.local.server import NexusLocalGateway

            self.gateway = NexusLocalGateway(app_module.app, Config())
        headers = {"authorization": f"Bearer {self.token}", "host": "127.0.0.1", "content-type": "application/json"}
        answer = self.gateway.handle_request(method, path, headers, json.dumps(body).encode() if body else b"")
        return answer["statusCode"], json.loads(answer["body"]) if answer["body"] else None

    def as_tenant(self, tenant: str) -> Bench:
        """The same app and figures, called as an admin of another tenant."""
        from chalicelib.tokens import mint_token

        return replace(self, token=mint_token(tenant, ["admin"], sub="bench-admin"))

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=600, **kw)

    def measure(self, name: str, items: int, run: Callable[[], Any], notes: str = "", traced: bool = True) -> Any:
        """Run `run` once, recording time, DynamoDB calls (server and client side alike) and peak heap. Untraced
        (no tracemalloc, which slows Python two to three times), the time is the one a caller waits."""
        before = self.counter.snapshot().calls
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
        self.figures.append(Figure(name, items, seconds, self.counter.snapshot().calls - before, peak,
                                   notes))
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

        counter = Counting()
        with counter.installed():  # before the app's connection is made, so its client is counted too
            reset_settings()
            reset_connections()
            create_table()
            import app as app_module
            from chalicelib.local.server import make_server
            from chalicelib.tokens import mint_token

            server = make_server(app_module.app, "127.0.0.1", 0)
            threading.Thread(target=server.server.serve_forever, daemon=True).start()
            base = f"http://127.0.0.1:{server.server.server_address[1]}"
            yield Bench(base, mint_token(tenant, ["admin"], sub="bench-admin"), counter, ddb.endpoint,
                        env["TABLE_NAME"])
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


def run_jobs() -> int:
    """Deliver the folder queue's job messages to the worker until it is empty, as the local runtime's poller does;
    answers the deliveries made."""
    import app as app_module
    from chalicelib import queue
    from chalicelib.local.job_queue import deliver

    folder = queue.folder()
    delivered = 0
    while True:
        got = folder.receive(1)
        if not got:
            return delivered
        deliver(folder, got[0], app_module.run_jobs, queue_name="jobs", region="eu-west-1")
        delivered += 1
