"""The real local server answers over HTTP."""
from __future__ import annotations

import requests


def test_health_answers_ok(live_server):
    response = requests.get(f"{live_server.base_url}/v1/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and set(response.json()["build"]) == {"version", "stage"}


def test_an_unknown_route_is_a_json_404(live_server):
    response = requests.get(f"{live_server.base_url}/v1/no-such-thing?x=1", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No route for GET /v1/no-such-thing",
                                         "details": [], "request_id": response.headers["X-Request-Id"]}}
