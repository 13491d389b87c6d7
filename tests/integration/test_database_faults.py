"""A frozen DynamoDB Local (SIGSTOP): every request answers 503 `unavailable` in time, never after minutes."""
from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.local.dynamodb_local import DynamoDBLocal
from tests.api.conftest import ENV
from tests.ddb_local import FAKE_AWS, _reset_app_caches

pytestmark = [pytest.mark.ddb, pytest.mark.slow]


@pytest.fixture
def frozen_api(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator:
    """The app (Chalice test client) on a DynamoDB Local of its own, with a table and a client; `freeze()` stops
    the emulator's JVM (`freeze(False)` lets it go on; the test's end does anyway)."""
    from chalice.test import Client

    from chalicelib.config import get_settings
    from chalicelib.tables import create_table
    from chalicelib.tokens import mint_token

    ddb = DynamoDBLocal().start()
    stopped = []
    try:
        env = {**FAKE_AWS, **{k: ENV[k] for k in ("AUTH_JWT_SECRET", "AUTH_ISSUER")}, "DATA_DIR": str(tmp_path),
               "DYNAMODB_ENDPOINT": ddb.endpoint, "TABLE_NAME": f"frozen-{uuid.uuid4().hex[:8]}"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        _reset_app_caches()
        get_settings()
        create_table()
        import app as app_module

        headers = {"Authorization": "Bearer " + mint_token("t1", ["admin"]), "Content-Type": "application/json"}
        with Client(app_module.app) as http:
            def call(method: str, path: str, body: dict | None = None, **extra: str) -> tuple[int, dict, float]:
                started = time.monotonic()
                answer = http.http.request(method, path, headers={**headers, **extra},
                                           body=json.dumps(body) if body is not None else None)
                return answer.status_code, json.loads(answer.body), time.monotonic() - started

            def freeze(frozen: bool = True) -> None:
                os.kill(ddb._proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)
                stopped[:] = [frozen]

            assert call("POST", "/v1/clients", {"name": "Before the freeze"})[0] == 201
            yield call, freeze
    finally:
        if stopped == [True]:
            os.kill(ddb._proc.pid, signal.SIGCONT)
        ddb.stop()
        _reset_app_caches()


def test_with_the_database_frozen_every_request_answers_503_within_its_bounds(frozen_api):
    call, freeze = frozen_api
    freeze()

    status, body, took = call("GET", "/v1/health")
    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert took < 10

    for method, path, payload, extra in [("GET", "/v1/clients", None, {}),
                                         ("POST", "/v1/clients", {"name": "Acme"}, {"Idempotency-Key": "frozen-1"}),
                                         ("POST", "/v1/clients", {"name": "Acme"}, {})]:
        status, body, took = call(method, path, payload, **extra)
        assert (status, body["error"]["code"]) == (503, "unavailable"), (method, path)
        assert took < 25, (method, path, took)  # DB_RETRY_BUDGET is 20 s; API Gateway gives up at 29 s

    freeze(False)
    assert call("GET", "/v1/health")[0] == 200
