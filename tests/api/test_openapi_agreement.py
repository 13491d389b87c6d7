"""The OpenAPI document agrees with the service on the requests it takes (conftest checks every answer)."""
from __future__ import annotations

import re

import pytest

from tests.api.openapi_check import document


def _schema(ref_or_schema: dict) -> dict:
    name = ref_or_schema["$ref"].rsplit("/", 1)[-1]
    return document()["components"]["schemas"][name]


def _nullable(prop: dict) -> bool:
    return prop.get("type") == "null" or any(option.get("type") == "null" for option in prop.get("anyOf", []))


@pytest.fixture
def ids(api):
    """One of every resource a staff PATCH names, by path parameter."""
    client = api.post("/v1/clients", {"name": "Acme"}).data
    base = f"/v1/clients/{client['id']}"
    return {
        "client_id": client["id"],
        "contact_id": api.post(f"{base}/contacts", {"full_name": "Pat", "email": "pat@acme.test"}).data["id"],
        "comm_id": api.post(f"{base}/communications", {"type": "note", "body": "Called"}).data["id"],
        "thread_id": api.post(f"{base}/threads", {"subject": "Rig"}).data["id"],
        "task_id": api.post(f"{base}/tasks", {"title": "Call back"}).data["id"],
        "category_id": api.post("/v1/categories", {"name": "Events"}).data["id"],
        "segment_id": api.post("/v1/segments", {"name": "Picked", "type": "static"}).data["id"],
    }


# Nullable fields a rule of the resource at hand may still require (a note's body), which a schema cannot say.
BY_RULE = {("/v1/clients/{client_id}/communications/{comm_id}", "body")}


def test_a_patch_refuses_null_exactly_for_the_fields_the_document_marks_not_nullable(api, ids):
    disagreements = []
    for path, item in document()["paths"].items():
        operation = item.get("patch")
        if operation is None or path == "/v1/portal/me":  # portal tokens: test_portal_api covers its fields
            continue
        body = _schema(operation["requestBody"]["content"]["application/json"]["schema"])
        for name, prop in body["properties"].items():
            answer = api.patch(path.format(**ids), {name: None})
            refused = answer.status_code == 422 and name in [d["field"] for d in answer.data["error"]["details"]]
            if refused == _nullable(prop) and (path, name) not in BY_RULE:
                documented = "nullable" if _nullable(prop) else "not nullable"
                disagreements.append(f"PATCH {path} {name}: null {'refused' if refused else 'taken'} "
                                     f"({answer.status_code}) but documented {documented}")
    assert disagreements == []


@pytest.mark.parametrize("header", ["{v}", '"{v}"', 'W/"{v}"', " {v} ", "one", "{v}.0", '"{v}', "-{v}", "", "²",
                                    "1" * 5000])
def test_if_match_is_taken_exactly_when_it_fits_the_documented_pattern(api, header):
    client = api.post("/v1/clients", {"name": "Acme"}).data
    header = header.format(v=client["version"])
    operation = document()["paths"]["/v1/clients/{client_id}"]["patch"]
    [param] = [p for p in operation["parameters"] if p["name"] == "If-Match"]
    fits = re.fullmatch(param["schema"]["pattern"], header.strip()) is not None  # HTTP drops surrounding spaces
    answer = api.patch(f"/v1/clients/{client['id']}", {"phone": "+31 20 555 0100"}, headers={"If-Match": header})
    assert answer.status_code == (200 if fits else 400), answer.data


def test_comma_list_filters_take_the_documented_values_and_refuse_others(api):
    operation = document()["paths"]["/v1/clients"]["get"]
    [status] = [p for p in operation["parameters"] if p["name"] == "status"]
    assert (status["style"], status["explode"]) == ("form", False)
    values = status["schema"]["items"]["enum"]
    assert api.get("/v1/clients?status=" + ",".join(values)).status_code == 200
    assert api.get("/v1/clients?status=lead,gold").status_code == 400


def test_a_custom_field_key_outside_the_documented_pattern_is_refused_by_name(api):
    pattern = _schema({"$ref": "#/components/schemas/CustomFieldDef"})["properties"]["key"]["pattern"]
    assert re.fullmatch(pattern, "venue_size") and not re.fullmatch(pattern, "Venue Size")
    answer = api.post("/v1/clients", {"name": "Acme", "custom_fields": {"Venue Size": 3}})
    assert answer.status_code == 422
    assert [d["field"] for d in answer.data["error"]["details"]] == ["custom_fields.Venue Size"]
