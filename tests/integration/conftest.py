"""Fixtures for tests on DynamoDB Local: the app over the Chalice test client or real HTTP, and the table's stream."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.config import get_settings, reset_settings
from chalicelib.tokens import mint_token
from tests.api.conftest import ENV, Api
from tests.http_servers import serving


@pytest.fixture
def ddb_api(ddb_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The Chalice app on a fresh table in DynamoDB Local, called as an admin of tenant t1."""
    from chalice.test import Client

    import app as app_module
    from chalicelib.config import get_settings, reset_settings

    for key in ("AUTH_JWT_SECRET", "AUTH_ISSUER"):
        monkeypatch.setenv(key, ENV[key])
    reset_settings()
    get_settings()  # cached now: the test client swaps .chalice/config.json's variables in during requests
    with Client(app_module.app) as http:
        yield Api(http)


class Live:
    """The app served over HTTP by the local runtime's threaded server, for parallel requests (Chalice's test client
    is not thread-safe: parallel bodies get mixed up); answers carry `.data` like Api's."""

    def __init__(self, base: str, tenant: str = "t1"):
        self.base = base
        self.tenant = tenant
        self.headers = {"Authorization": f"Bearer {mint_token(tenant, ['admin'], sub='user-1')}"}

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> requests.Response:
        answer = requests.request(method, self.base + path, json=body, headers={**self.headers, **(headers or {})},
                                  timeout=120)
        answer.data = answer.json() if answer.content else None  # type: ignore[attr-defined]
        return answer

    def get(self, path: str) -> requests.Response:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, headers: dict | None = None) -> requests.Response:
        return self.call("POST", path, body, headers)

    def patch(self, path: str, body: Any = None) -> requests.Response:
        return self.call("PATCH", path, body)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> dict:
        answer = self.call(method, path, body)
        assert answer.status_code == status, answer.text
        return answer.json()


@pytest.fixture
def live(ddb_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The app on a fresh table in DynamoDB Local, served on a free port, called as an admin of tenant t1."""
    import app as app_module

    for key in ("AUTH_JWT_SECRET", "AUTH_ISSUER"):
        monkeypatch.setenv(key, ENV[key])
    reset_settings()
    get_settings()
    with serving(app_module.app) as base:
        yield Live(base)


class StreamTap:
    """Reads the table's stream as Lambda would receive it; each `take()` returns the records new since the last."""

    def __init__(self, table_name: str, endpoint: str, checkpoints: Path):
        from chalicelib.local.stream_pump import StreamPump

        self.records: list[dict] = []
        self.pump = StreamPump(self._record, table_name=table_name, endpoint_url=endpoint, region="eu-west-1",
                               checkpoint_path=checkpoints, consumer="tap")

    def _record(self, event: dict, context) -> dict:
        self.records.extend(event["Records"])
        return {"batchItemFailures": []}

    def take(self) -> list[dict]:
        while self.pump.poll_once():
            pass
        taken, self.records = self.records, []
        return taken

    def settle(self, rounds: int = 6) -> None:
        """Deliver records to on_table_stream until its effects stop writing (counts follow one hop later)."""
        import app as app_module

        for _ in range(rounds):
            batch = self.take()
            if not batch:
                return
            assert app_module.on_table_stream({"Records": batch}, None) == {"batchItemFailures": []}
        raise AssertionError("the stream never settled")


@pytest.fixture
def stream(ddb_table: str, ddb_endpoint: str, tmp_path: Path) -> StreamTap:
    return StreamTap(ddb_table, ddb_endpoint, tmp_path / "tap.json")
