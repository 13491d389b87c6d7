"""Contract §16 through the real app: CORS preflights on every route path, CORS and X-Request-Id on every answer."""
from __future__ import annotations

import json
import re

import pytest
from chalice.local import LambdaContext

from chalicelib.config import get_settings, reset_settings

SPA = "https://app.nexusrms.example"
CONTRACT_HEADERS = {"authorization", "content-type", "idempotency-key", "if-match"}
EXPOSED = {"idempotent-replayed", "x-request-id", "retry-after"}


def listed(value: str | None) -> set[str]:
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


def route_paths() -> dict[str, set[str]]:
    import app

    return {path: set(views) - {"OPTIONS"} for path, views in app.app.routes.items()}


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", "x1", path)


def preflight(api, path: str, method: str, origin: str = SPA):
    return api.http.http.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key,if-match"})


@pytest.fixture
def only_our_origins(monkeypatch):
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", f"{SPA}/, https://portal.nexusrms.example")  # "/" as people write it
    reset_settings()
    get_settings()  # read now: the test client patches the stage's variables into the environment during a request


def test_a_preflight_from_another_origin_succeeds_on_every_route_path_without_a_token(api):
    paths = route_paths()
    assert len(paths) > 40
    for path, methods in paths.items():
        for method in methods:
            response = preflight(api, concrete(path), method)
            assert response.status_code in (200, 204), (path, response.status_code, response.body)
            assert response.headers["Access-Control-Allow-Origin"] == "*", path  # the local default
            assert listed(response.headers["Access-Control-Allow-Methods"]) == {m.lower() for m in methods} | {
                "options"}, path
            assert CONTRACT_HEADERS <= listed(response.headers["Access-Control-Allow-Headers"]), path
            assert int(response.headers["Access-Control-Max-Age"]) > 0
            assert response.headers["X-Request-Id"]


def test_with_a_list_of_origins_an_allowed_one_is_echoed_and_others_get_no_grant(api, only_our_origins):
    allowed = preflight(api, "/v1/clients", "POST")
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == SPA
    assert "origin" in listed(allowed.headers["Vary"])
    stranger = preflight(api, "/v1/clients", "POST", origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in stranger.headers
    assert "origin" in listed(stranger.headers["Vary"])
    answer = api.get("/v1/clients", headers={"Origin": "https://portal.nexusrms.example"})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "https://portal.nexusrms.example"
    assert "Access-Control-Allow-Origin" not in api.get("/v1/clients", headers={"Origin": "https://x.example"}).headers


def test_every_answer_errors_included_carries_cors_and_its_request_id(api):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    anonymous = api.as_()
    anonymous.token = ""
    answers = {
        "200": api.get(f"/v1/clients/{client['id']}", headers={"Origin": SPA}),
        "201": api.post("/v1/clients", {"name": "Beta"}, headers={"Origin": SPA, "Idempotency-Key": "k1"}),
        "replayed 201": api.post("/v1/clients", {"name": "Beta"}, headers={"Origin": SPA, "Idempotency-Key": "k1"}),
        "400 invalid_cursor": api.get("/v1/clients?cursor=forged", headers={"Origin": SPA}),
        "401": anonymous.get("/v1/clients", headers={"Origin": SPA}),
        "403": api.as_(roles=("viewer",)).post("/v1/clients", {"name": "C"}, headers={"Origin": SPA}),
        "404": api.get("/v1/clients/nobody", headers={"Origin": SPA}),
        "405 (Chalice's own)": api.call("DELETE", "/v1/clients", headers={"Origin": SPA}),
        # Straight through the test client: the OpenAPI check of `api.call` does not know Chalice's own 415.
        "415 (Chalice's own)": api.http.http.request("POST", "/v1/clients", body=b"name=Acme", headers={
            "Authorization": f"Bearer {api.token}", "Origin": SPA,
            "Content-Type": "application/x-www-form-urlencoded"}),
        "422": api.post("/v1/clients", {"name": ""}, headers={"Origin": SPA}),
    }
    ids = set()
    for name, response in answers.items():
        assert response.headers.get("Access-Control-Allow-Origin") == "*", name
        assert EXPOSED <= listed(response.headers.get("Access-Control-Expose-Headers")), name
        request_id = response.headers.get("X-Request-Id")
        assert request_id, name
        ids.add(request_id)
        if response.status_code >= 400:
            body = json.loads(response.body)
            assert body["error"]["request_id"] == request_id, (name, body)
    assert len(ids) == len(answers), "each request has its own id"
    assert answers["replayed 201"].headers["Idempotent-Replayed"] == "true"


def lambda_event(method: str, resource: str, path: str, headers: dict, request_id: str) -> dict:
    """An API Gateway (REST, proxy) event as AWS delivers it, with the gateway's request id."""
    return {"resource": resource, "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": resource, "httpMethod": method, "path": f"/prod{path}",
                               "requestId": request_id, "stage": "prod", "identity": {"sourceIp": "203.0.113.9"}},
            "body": None, "isBase64Encoded": False}


def test_in_aws_the_request_id_is_api_gateways_own(api):
    import app

    context = LambdaContext("api_handler", 512)
    ok = app.app(lambda_event("GET", "/v1/health", "/v1/health", {"Origin": SPA}, "gw-req-1"), context)
    assert ok["statusCode"] == 200 and ok["headers"]["X-Request-Id"] == "gw-req-1"
    refused = app.app(lambda_event("GET", "/v1/clients", "/v1/clients", {"origin": SPA}, "gw-req-2"), context)
    assert refused["statusCode"] == 401 and refused["headers"]["X-Request-Id"] == "gw-req-2"
    assert json.loads(refused["body"])["error"]["request_id"] == "gw-req-2"
    assert refused["headers"]["Access-Control-Allow-Origin"] == "*"
