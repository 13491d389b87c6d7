"""Deployed, callers bring Cognito's tokens: the app verifies them against the pool's JWKS (served here over HTTP,
as Cognito serves it) and AUTH_AUDIENCE, the template's two app clients."""
from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config import get_settings, reset_settings
from chalicelib.handlers import auth
from tests.http_servers import jwks_server

SPA_CLIENT = "4kq2c1u9v8spa0client0id000"
MODULE_CLIENT = "7h3m2m0integration0client00"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def pool(api, monkeypatch):
    """A user pool whose JWKS is served on a local port; the API trusts it with AUTH_AUDIENCE set."""
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "k1", "alg": "RS256",
           "use": "sig"}
    server = jwks_server([jwk])
    issuer = f"http://127.0.0.1:{server.server_address[1]}/eu-west-1_AbCdEf123"
    monkeypatch.setenv("AUTH_ISSUER", issuer)
    monkeypatch.setenv("AUTH_JWKS_URL", f"{issuer}/.well-known/jwks.json")
    monkeypatch.setenv("AUTH_AUDIENCE", f"{SPA_CLIENT},{MODULE_CLIENT}")
    reset_settings()
    get_settings()  # read now: the test client patches the stage's variables into the environment during requests
    auth._jwks_client.cache_clear()
    yield issuer
    server.shutdown()
    server.server_close()
    auth._jwks_client.cache_clear()


def id_token(issuer: str, **over) -> str:
    now = int(time.time())
    claims = {"sub": "5f1e2d3c-aaaa-bbbb-cccc-0123456789ab", "cognito:groups": ["admin"], "email_verified": True,
              "iss": issuer, "cognito:username": "ann", "origin_jti": "o1", "aud": SPA_CLIENT, "event_id": "e1",
              "token_use": "id", "auth_time": now - 5, "custom:tenant_id": "t1", "exp": now + 3600, "iat": now - 5,
              "jti": "j1", "email": "ann@example.com", **over}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})


def module_token(issuer: str, **over) -> str:
    now = int(time.time())
    claims = {"sub": MODULE_CLIENT, "token_use": "access", "scope": "nexus-client-management/integration",
              "auth_time": now, "iss": issuer, "exp": now + 3600, "iat": now, "version": 2, "jti": "j2",
              "client_id": MODULE_CLIENT, "tenant_id": "t1", **over}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})


def bearing(api, token):
    other = api.as_()
    other.token = token
    return other


def test_a_staff_id_token_of_the_spa_is_accepted_and_one_of_another_app_client_is_401(api, pool):
    spa = bearing(api, id_token(pool))
    assert spa.post("/v1/clients", {"name": "Acme"}).status_code == 201
    assert [c["name"] for c in spa.get("/v1/clients").data["items"]] == ["Acme"]
    stranger = bearing(api, id_token(pool, aud="an-app-client-of-someone-else"))
    assert stranger.get("/v1/clients").status_code == 401


def test_with_a_wrong_audience_configured_the_same_id_token_is_401(api, pool, monkeypatch):
    token = id_token(pool)
    assert bearing(api, token).get("/v1/clients").status_code == 200
    monkeypatch.setenv("AUTH_AUDIENCE", "not-the-spa-client")
    reset_settings()
    get_settings()
    response = bearing(api, token).get("/v1/clients")
    assert response.status_code == 401 and response.data["error"]["code"] == "unauthorized"


def test_a_module_token_of_the_client_credentials_grant_may_push_facts_and_nothing_else(api, pool):
    client = bearing(api, id_token(pool)).post("/v1/clients", {"name": "Acme"}).data
    module = bearing(api, module_token(pool))
    fact = {"client_id": client["id"], "kind": "invoice", "amount": "100.00", "status": "paid"}
    assert module.put("/v1/integrations/invoices/inv-1", fact).status_code == 201
    assert module.get("/v1/clients").status_code == 403
    assert bearing(api, module_token(pool, tenant_id=None)).put("/v1/integrations/invoices/inv-2",
                                                                 fact).status_code == 401
