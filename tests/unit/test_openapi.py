"""The OpenAPI document: valid 3.1, complete over the route registry, every `$ref` resolvable."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest
from openapi_spec_validator import validate

import app  # noqa: F401  (registers every blueprint, so ROUTES is complete)
from chalicelib.handlers import openapi
from chalicelib.handlers.errors import envelope
from chalicelib.handlers.routing import ROUTES

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def doc():
    return openapi.build_openapi()


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(doc, ref):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable {ref}"
        node = node[part]
    return node


def test_top_level_shape(doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "NexusRMS Client Management API", "version": "1.0.0",
                           "description": doc["info"]["description"]}
    assert doc["servers"] == [{"url": "/"}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    json.dumps(doc)  # plain JSON all the way down


def test_passes_the_openapi_31_validator(doc):
    validate(doc)


def test_every_route_is_documented_with_its_method(doc):
    assert ROUTES, "no routes registered"
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert op["summary"] == route.summary
        assert op["tags"] == [route.tag]
        assert str(route.status) in op["responses"]
    documented = {(p, m) for p, item in doc["paths"].items() for m in item if m in METHODS}
    assert documented == {(r.path, r.method.lower()) for r in ROUTES}


def test_operation_ids_are_unique(doc):
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids)


def test_operation_id_is_derived_from_method_and_path():
    assert openapi.operation_id("GET", "/v1/clients/{client_id}") == "get_clients_client_id"
    assert openapi.operation_id("POST", "/v1/settings/custom-fields") == "post_settings_custom_fields"


def test_every_ref_resolves(doc):
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        _resolve(doc, ref)


def test_path_parameters_match_the_path(doc):
    for path, item in doc["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        for op in item.values():
            params = [p for p in op.get("parameters", []) if p["in"] == "path"]
            assert [p["name"] for p in params] == names
            assert all(p["required"] is True for p in params)


def test_create_client_documents_body_201_and_idempotency(doc):
    op = doc["paths"]["/v1/clients"]["post"]
    body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref == "#/components/schemas/ClientCreate"
    assert op["requestBody"]["required"] is True
    assert "name" in _resolve(doc, body_ref)["properties"]
    created = op["responses"]["201"]["content"]["application/json"]["schema"]
    assert "id" in _resolve(doc, created["$ref"])["properties"]
    assert "200" not in op["responses"]
    headers = [p for p in op["parameters"] if p["in"] == "header"]
    assert [h["name"] for h in headers] == ["Idempotency-Key"]
    assert {"400", "401", "403", "422", "413", "503"} <= set(op["responses"])


def test_list_query_parameters_come_from_the_query_model(doc):
    params = {p["name"]: p for p in doc["paths"]["/v1/clients"]["get"]["parameters"] if p["in"] == "query"}
    assert {"limit", "cursor"} <= set(params)
    assert params["limit"]["required"] is False
    assert params["limit"]["schema"]["maximum"] == 100 and params["limit"]["schema"]["minimum"] == 1
    assert params["cursor"]["schema"] == {"type": "string"}  # absent rather than null


def test_patch_of_a_versioned_resource_takes_if_match_and_412(doc):
    op = doc["paths"]["/v1/clients/{client_id}"]["patch"]
    assert "If-Match" in [p["name"] for p in op["parameters"] if p["in"] == "header"]
    assert op["responses"]["412"] == {"$ref": "#/components/responses/VersionConflict"}
    assert "412" not in doc["paths"]["/v1/clients/{client_id}"]["get"]["responses"]


def test_204_has_no_content(doc):
    for route in ROUTES:
        if route.status == 204:
            assert "content" not in doc["paths"][route.path][route.method.lower()]["responses"]["204"]


def test_security_and_role_per_operation(doc):
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert op["x-required-role"] == route.need
        if route.need == "public":
            assert "security" not in op
            assert ("401" in op["responses"]) == (route.body is not None)  # a signed body (webhooks) may be 401
        else:
            assert op["security"] == [{"bearerAuth": []}]
            assert f"`{route.need}`" in op["description"]
            assert {"401", "403"} <= set(op["responses"])


def test_service_routes_are_public(doc):
    for path in ("/v1/health", "/v1/openapi.json", "/v1/docs"):
        assert "security" not in doc["paths"][path]["get"]
    assert "text/html" in doc["paths"]["/v1/docs"]["get"]["responses"]["200"]["content"]
    assert "503" in doc["paths"]["/v1/health"]["get"]["responses"]


def test_error_responses_share_the_error_envelope(doc):
    for response in doc["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    schema = {**doc["components"]["schemas"]["Error"], "components": doc["components"]}
    real = json.loads(envelope(422, "validation_error", "bad", [{"field": "email", "message": "x"}]).body)
    jsonschema.validate(real, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": {"code": "x"}}, schema)


def test_document_is_cached_and_copies_are_independent():
    first = openapi.build_openapi()
    first["paths"].clear()
    assert openapi.build_openapi()["paths"]
    assert openapi._document.cache_info().currsize == 1


def test_docs_page_lists_every_operation_without_external_assets():
    page = openapi.render_docs()
    for route in ROUTES:
        assert f'id="{openapi.operation_id(route.method, route.path)}"' in page
    assert 'id="schema-ClientCreate"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page
