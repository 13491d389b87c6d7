"""Health, the OpenAPI document and the HTML reference through the real app, without tokens."""
from __future__ import annotations

import json
import re

import pytest
from chalice.test import Client

from chalicelib.config import reset_settings
from chalicelib.tables import reset_connections


@pytest.fixture
def http(aws):
    import app as app_module

    with Client(app_module.app) as client:
        yield client.http


def test_health_is_ok_when_the_table_answers_and_names_the_build(http, monkeypatch):
    monkeypatch.setenv("BUILD_VERSION", "3f2a9c1d4e5b")
    monkeypatch.setenv("STAGE", "prod")
    reset_settings()
    response = http.get("/v1/health")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == {"status": "ok", "build": {"version": "3f2a9c1d4e5b", "stage": "prod"}}


def test_health_is_503_unavailable_when_the_table_is_missing(http, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    reset_settings()
    reset_connections()
    response = http.get("/v1/health")
    assert response.status_code == 503
    error = json.loads(response.body)["error"]
    assert error["code"] == "unavailable"
    assert error["message"] and error["details"] == []


def test_openapi_json_needs_no_token(http):
    response = http.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    doc = json.loads(response.body)
    assert doc["openapi"] == "3.1.0"
    assert {"/v1/health", "/v1/openapi.json", "/v1/docs", "/v1/clients"} <= set(doc["paths"])


def test_docs_page_is_html_rendered_from_the_document(http):
    response = http.get("/v1/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode() if isinstance(response.body, bytes) else response.body
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "NexusRMS Client Management API" in page
    doc = json.loads(http.get("/v1/openapi.json").body)
    for path, item in doc["paths"].items():
        for op in item.values():
            assert f'id="{op["operationId"]}"' in page, path
    assert "<code>/v1/clients/{client_id}</code>" in page


def test_docs_page_loads_nothing_from_the_internet(http):
    page = http.get("/v1/docs").body.decode()
    for tag in re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page, re.I):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", tag, re.I), tag
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "@import" not in page


def test_service_routes_ignore_a_bad_token(http):
    response = http.get("/v1/openapi.json", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 200


def test_requests_from_several_threads_leave_the_process_environment_in_place(http, monkeypatch):
    import os
    from concurrent.futures import ThreadPoolExecutor

    environ = os.environ
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: http.get("/v1/openapi.json").status_code, range(64)))
    assert statuses == [200] * 64
    assert os.environ is environ  # not a stale copy: what a later test sets still reaches os.getenv
    monkeypatch.setenv("NEXUS_PROBE", "set-after-the-requests")
    assert os.getenv("NEXUS_PROBE") == "set-after-the-requests"
