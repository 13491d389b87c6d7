"""Fixtures for tests on DynamoDB Local: the app over the Chalice test client, and the table's real stream."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ENV, Api


@pytest.fixture
def ddb_api(ddb_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The Chalice app on a fresh table in DynamoDB Local, called as an admin of tenant t1."""
    from chalice.test import Client

    from chalicelib.config import get_settings, reset_settings
    import app as app_module

    for key in ("AUTH_JWT_SECRET", "AUTH_ISSUER"):
        monkeypatch.setenv(key, ENV[key])
    reset_settings()
    get_settings()  # cached now: the test client swaps .chalice/config.json's variables in during requests
    with Client(app_module.app) as http:
        yield Api(http)


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
