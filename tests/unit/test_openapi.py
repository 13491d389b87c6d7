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


def test_the_import_documents_its_csv_body_and_the_docs_page_shows_it(doc):
    body = doc["paths"]["/v1/clients/import"]["post"]["requestBody"]
    assert body["required"] is True
    assert "text/csv" in body["content"]
    assert body["content"]["text/csv"]["schema"] == {"type": "string", "format": "binary"}
    assert "<code>text/csv</code>" in openapi.render_docs()


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
            # a signed body (webhooks) may be 401, and a route that takes a token for more (deep health)
            assert ("401" in op["responses"]) == (route.body is not None or 401 in route.also)
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


def _success_schemas(op, statuses):
    return [op["responses"][s]["content"]["application/json"]["schema"] for s in statuses]


def test_routes_document_every_status_they_answer(doc):
    for kind in ("projects", "invoices"):  # the first PUT of an id creates
        op = doc["paths"][f"/v1/integrations/{kind}/{{{kind[:-1]}_id}}"]["put"]
        first, again = _success_schemas(op, ("201", "200"))
        assert first == again
    for path in ("/v1/segments/{segment_id}/members", "/v1/clients/{client_id}/associations"):
        op = doc["paths"][path]["post"]  # posting a duplicate changes nothing and answers 200
        created, duplicate = _success_schemas(op, ("201", "200"))
        assert created == duplicate
    webhook = doc["paths"]["/v1/webhooks/node"]["post"]["responses"]
    assert {"200", "202", "409"} <= set(webhook)
    assert webhook["409"] == {"$ref": "#/components/responses/Conflict"}
    assert doc["paths"]["/v1/clients"]["post"]["responses"]["415"] == {
        "$ref": "#/components/responses/UnsupportedMediaType"}


def _nullable(prop):
    return any(option.get("type") == "null" for option in prop.get("anyOf", [prop]))


def test_patch_bodies_are_nullable_exactly_where_their_model_takes_null(doc):
    patches = [r for r in ROUTES if r.method == "PATCH" and r.body is not None]
    assert len(patches) >= 10
    for route in patches:
        schema = doc["components"]["schemas"][route.body.__name__]
        for name, prop in schema["properties"].items():
            try:
                route.body.model_validate({name: None})
                takes_null = True
            except ValueError:
                takes_null = False
            assert _nullable(prop) == takes_null, (route.path, name)
            assert "default" not in prop or prop["default"] is None and takes_null, (route.path, name)
    names = {"ClientUpdate": "name", "ContactUpdate": "full_name", "TaskUpdate": "title",
             "CategoryUpdate": "name", "PortalSettingsPatch": "enabled", "ClientSettingsPatch": "default_currency"}
    for model, field in names.items():
        assert not _nullable(doc["components"]["schemas"][model]["properties"][field]), model
    assert _nullable(doc["components"]["schemas"]["ClientUpdate"]["properties"]["email"])


def test_if_match_is_declared_as_the_version_plain_or_quoted(doc):
    [param] = [p for p in doc["paths"]["/v1/clients/{client_id}"]["patch"]["parameters"] if p["name"] == "If-Match"]
    pattern = re.compile(param["schema"]["pattern"])
    assert all(pattern.fullmatch(v) for v in ("3", '"3"', 'W/"3"'))
    assert not any(pattern.fullmatch(v) for v in ("three", '"3', "3.0", "-3", "", "²"))


def test_list_parameters_are_comma_lists_of_their_values(doc):
    params = {p["name"]: p for p in doc["paths"]["/v1/clients"]["get"]["parameters"]}
    assert params["status"]["schema"]["items"]["enum"] == ["lead", "trial", "active", "inactive", "archived"]
    assert params["risk_level"]["schema"]["items"]["enum"] == ["low", "medium", "high"]
    comm = {p["name"]: p for p in doc["paths"]["/v1/clients/{client_id}/communications"]["get"]["parameters"]}
    assert comm["type"]["schema"]["items"]["enum"] == ["email", "phone", "sms", "meeting", "note"]
    arrays = [p for item in doc["paths"].values() for op in item.values() for p in op.get("parameters", [])
              if p["in"] == "query" and p["schema"].get("type") == "array"]
    assert len(arrays) >= 5
    assert all((p["style"], p["explode"]) == ("form", False) and "enum" in p["schema"]["items"] for p in arrays)


def test_custom_field_keys_carry_their_pattern(doc):
    schemas = doc["components"]["schemas"]
    pattern = schemas["CustomFieldDef"]["properties"]["key"]["pattern"]
    assert re.fullmatch(pattern, "venue_size") and not re.fullmatch(pattern, "Venue size")
    [values] = [o for o in schemas["ClientCreate"]["properties"]["custom_fields"]["anyOf"] if o["type"] == "object"]
    assert values["propertyNames"] == {"pattern": pattern} and "patternProperties" not in values


def test_path_parameters_are_bounded_like_ids(doc):
    for item in doc["paths"].values():
        for op in item.values():
            for p in op.get("parameters", []):
                if p["in"] == "path":
                    assert p["schema"] == {"type": "string", "minLength": 1, "maxLength": 128}


def test_the_error_envelope_may_carry_the_request_id(doc):
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]
    assert "request_id" in error["properties"] and "request_id" not in error["required"]


def test_the_answer_check_refuses_what_the_document_does_not_promise():
    from tests.api import openapi_check as check

    json_type = "application/json; charset=utf-8"
    error = json.dumps({"error": {"code": "not_found", "message": "x", "details": []}})
    assert check.template_of("/v1/clients/chips?x=1") == "/v1/clients/chips"
    assert check.template_of("/v1/clients/abc") == "/v1/clients/{client_id}"
    assert check.problems("GET", "/v1/clients/abc", 404, json_type, error) == []
    assert check.problems("GET", "/v1/health", 200, json_type,
                          '{"status": "ok", "build": {"version": "local", "stage": "local"}}') == []
    assert check.problems("GET", "/v1/nowhere", 404, json_type, error) == []
    assert check.problems("DELETE", "/v1/clients", 405, json_type, error.replace("not_found", "x")) == []
    wrong = [
        check.problems("GET", "/v1/nowhere", 200, json_type, "{}"),  # no such route, yet an answer
        check.problems("GET", "/v1/clients/abc", 500, json_type, error),  # undocumented status
        check.problems("GET", "/v1/health", 200, json_type, '{"status": "fine"}'),  # not the documented body
        check.problems("GET", "/v1/health", 200, "text/plain", "ok"),  # not the documented content type
        check.problems("GET", "/v1/clients/abc", 404, json_type, '{"error": {"code": "x"}}'),  # not the envelope
        check.problems("DELETE", "/v1/clients/abc/contacts/c", 204, None, "gone"),  # a body where none is
    ]
    assert all(wrong), wrong
