"""Handler tests: the real Chalice app through its test client, on moto's DynamoDB."""
from __future__ import annotations

import json

import pytest
from moto import mock_aws

from chalicelib.config import reset_settings
from chalicelib.tables import create_table, reset_connections
from chalicelib.tokens import mint_token
from tests.api import openapi_check

ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "TABLE_NAME": "client-management-test", "AUTH_JWT_SECRET": "test-secret-of-enough-length-for-hs256",
    "AUTH_ISSUER": "nexusrms-test",
}


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    reset_settings()
    reset_connections()
    with mock_aws():
        create_table()
        yield
    reset_connections()
    reset_settings()


class Api:
    """A thin JSON wrapper over chalice.test.Client with a bearer token."""

    def __init__(self, http, tenant="t1", roles=("admin",)):
        self.http = http
        self.token = mint_token(tenant, list(roles), sub="user-1")

    def as_(self, tenant="t1", roles=("admin",)) -> "Api":
        return Api(self.http, tenant, roles)

    def call(self, method, path, body=None, headers=None, raw=None):
        h = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json", **(headers or {})}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.http.http.request(method, path, headers=h, body=data)
        response.data = json.loads(response.body) if response.body and \
            response.headers.get("Content-Type", "").startswith("application/json") else response.body
        wrong = openapi_check.problems(method, path, response.status_code, response.headers.get("Content-Type"),
                                       response.body)
        if wrong:  # every answer a test gets must be one the OpenAPI document promises
            pytest.fail("the answer disagrees with /v1/openapi.json:\n" + "\n".join(wrong), pytrace=False)
        return response

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)


@pytest.fixture
def api(aws):
    from chalice.test import Client

    import app as app_module

    with Client(app_module.app) as http:
        yield Api(http)


class PortalUser(Api):
    """A contact signed in to the portal with the token the accept call answered."""

    def __init__(self, http, token):
        self.http, self.token = http, token


@pytest.fixture
def local_mail(monkeypatch):
    """Mail and portal links as the local run makes them: the outbox under DATA_DIR, the default portal URL."""
    for name in ("OUTBOX_DIR", "EMAIL_SENDER", "PORTAL_URL", "PORTAL_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
