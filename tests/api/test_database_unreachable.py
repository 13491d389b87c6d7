"""When DynamoDB cannot be reached, every route answers 503 `unavailable` and nothing is half-written."""
from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib.config import reset_settings
from chalicelib.tables import reset_connections
from chalicelib.tables.errors import NOTHING_WRITTEN
from chalicelib.tokens import mint_token


@pytest.fixture
def http(monkeypatch):
    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    for key, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                       "TABLE_NAME": "unreachable", "AUTH_JWT_SECRET": "s" * 40, "AUTH_ISSUER": "i"}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_connections()
    import app as app_module

    with Client(app_module.app) as client:
        yield client
    reset_connections()
    reset_settings()


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v1/clients/01ABC", None), ("GET", "/v1/clients", None), ("GET", "/v1/clients/chips", None),
    ("POST", "/v1/clients", {"name": "Acme"}), ("GET", "/v1/settings/client", None), ("GET", "/v1/health", None),
])
def test_an_unreachable_database_is_a_503_unavailable(http, method, path, body):
    headers = {"Authorization": "Bearer " + mint_token("t1", ["admin"]), "Content-Type": "application/json"}
    response = http.http.request(method, path, headers=headers, body=json.dumps(body) if body else None)
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "unavailable"


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "refused-1"}])
def test_a_database_refusing_connections_says_nothing_was_written(http, headers):
    # Connection refused: no request ever reached the database, so this is certain.
    headers = {"Authorization": "Bearer " + mint_token("t1", ["admin"]), "Content-Type": "application/json",
               **headers}
    response = http.http.request("POST", "/v1/clients", headers=headers, body=json.dumps({"name": "Acme"}))
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["message"] == NOTHING_WRITTEN
