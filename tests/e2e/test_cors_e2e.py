"""An SPA on another origin can use the real local server (`make run`): preflights and CORS on every answer."""
from __future__ import annotations

import requests

SPA = "http://localhost:5173"


def test_a_preflight_from_another_origin_succeeds_and_the_real_request_follows(live_server):
    url = f"{live_server.base_url}/v1/clients"
    preflight = requests.options(url, timeout=5, headers={
        "Origin": SPA, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed
    created = requests.post(url, json={"name": "Cross Origin Ltd"}, timeout=10,
                            headers={**live_server.headers(), "Origin": SPA, "Idempotency-Key": "cors-e2e-1"})
    assert created.status_code == 201, created.text
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in created.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"idempotent-replayed", "x-request-id", "retry-after"} <= exposed and created.headers["X-Request-Id"]


def test_errors_of_the_local_server_carry_cors_and_their_request_id(live_server):
    for path in ("/v1/clients", "/v1/no-such-route"):  # the app's 401, the local gateway's own 404
        response = requests.get(f"{live_server.base_url}{path}", headers={"Origin": SPA}, timeout=5)
        assert response.status_code in (401, 404)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.json()["error"]["request_id"] == response.headers["X-Request-Id"]
