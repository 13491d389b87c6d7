"""§1/§2 conventions through the real app: error envelope, limits, cursors, idempotency, If-Match, roles."""
from __future__ import annotations

import json
import time

import jwt

from chalicelib.tokens import mint_token

JSON = "application/json; charset=utf-8"


def assert_envelope(response, status, code):
    assert response.status_code == status, (response.status_code, response.body)
    assert response.headers.get("Content-Type") == JSON
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code if code else body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    assert "Traceback" not in str(response.body)
    return body["error"]


def fields(response):
    return [d["field"] for d in response.data["error"]["details"]]


def with_token(api, token):
    other = api.as_()
    other.token = token
    return other


def create(api, name="Acme", **fields_):
    response = api.post("/v1/clients", {"name": name, **fields_})
    assert response.status_code == 201, response.data
    return response.data


def count(api):
    return len(api.get("/v1/clients?limit=100&status=lead,trial,active,inactive,archived").data["items"])


# --- the error envelope ------------------------------------------------------------------------------

def test_wrong_method_is_405_in_the_envelope(api):
    error = assert_envelope(api.call("DELETE", "/v1/clients"), 405, "method_not_allowed")
    assert error["details"] == []


def test_body_that_is_not_json_is_400_invalid_json(api):
    assert_envelope(api.post("/v1/clients", raw="{name: 'Acme'"), 400, "invalid_json")
    assert_envelope(api.patch(f"/v1/clients/{create(api)['id']}", raw="not json"), 400, "invalid_json")


def test_json_that_is_not_an_object_is_400_invalid_json(api):
    for raw in ["[]", '"Acme"', "42", "null"]:
        assert_envelope(api.post("/v1/clients", raw=raw), 400, "invalid_json")
    assert count(api) == 0


def test_empty_body_on_create_is_400_invalid_json(api):
    assert_envelope(api.post("/v1/clients", raw=""), 400, "invalid_json")


def test_body_over_one_mebibyte_is_413(api):
    raw = json.dumps({"name": "Acme", "industry": "x" * (1024 * 1024)})
    assert_envelope(api.post("/v1/clients", raw=raw), 413, "payload_too_large")
    assert count(api) == 0


def test_unsupported_content_type_is_in_the_envelope(api):
    response = api.post("/v1/clients", {"name": "Acme"}, headers={"Content-Type": "text/plain"})
    assert_envelope(response, 415, "unsupported_media_type")


def test_validation_errors_name_each_bad_field(api):
    response = api.post("/v1/clients", {"name": "", "email": "nope", "pricing_tier": "gold"})
    error = assert_envelope(response, 422, "validation_error")
    assert {"name", "email", "pricing_tier"} <= set(fields(response))
    assert all(d["message"] for d in error["details"])


# --- query parameters and cursors --------------------------------------------------------------------

def test_limit_outside_one_to_a_hundred_is_400_bad_request(api):
    for limit in ["0", "101", "-1", "ten", "2.5"]:
        response = api.get(f"/v1/clients?limit={limit}")
        assert_envelope(response, 400, "bad_request")
        assert fields(response) == ["limit"], limit
    assert api.get("/v1/clients?limit=1").status_code == 200
    assert api.get("/v1/clients?limit=100").status_code == 200


def test_unknown_query_parameter_is_400_naming_it(api):
    response = api.get("/v1/clients?colour=red")
    assert_envelope(response, 400, "bad_request")
    assert fields(response) == ["colour"]


def test_edited_cursor_is_400_invalid_cursor(api):
    for i in range(3):
        create(api, f"C{i}")
    cursor = api.get("/v1/clients?limit=1").data["next_cursor"]
    assert cursor
    payload, signature = cursor.split(".")
    edited = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    for bad in [edited, "garbage", cursor + "x"]:
        assert_envelope(api.get(f"/v1/clients?limit=1&cursor={bad}"), 400, "invalid_cursor")


def test_cursor_of_another_query_or_tenant_is_400_invalid_cursor(api):
    for i in range(3):
        create(api, f"C{i}")
    cursor = api.get("/v1/clients?limit=1").data["next_cursor"]
    assert_envelope(api.get(f"/v1/clients?limit=1&sort=-name&cursor={cursor}"), 400, "invalid_cursor")
    assert_envelope(api.get(f"/v1/clients?limit=1&status=active&cursor={cursor}"), 400, "invalid_cursor")
    assert_envelope(api.as_("t2").get(f"/v1/clients?limit=1&cursor={cursor}"), 400, "invalid_cursor")
    second = api.get(f"/v1/clients?limit=2&cursor={cursor}")
    assert second.status_code == 200 and [c["name"] for c in second.data["items"]] == ["C1", "C2"]


# --- Idempotency-Key ---------------------------------------------------------------------------------

def test_idempotency_key_replays_the_first_201_and_creates_nothing_new(api):
    key = {"Idempotency-Key": "create-acme-1"}
    first = api.post("/v1/clients", {"name": "Acme"}, headers=key)
    again = api.post("/v1/clients", {"name": "Acme"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.data == first.data
    assert count(api) == 1
    assert api.get("/v1/clients/chips").data["all"] == 1


def test_idempotency_key_reused_with_another_body_is_409(api):
    key = {"Idempotency-Key": "k-2"}
    first = api.post("/v1/clients", {"name": "Acme"}, headers=key)
    assert first.status_code == 201
    error = assert_envelope(api.post("/v1/clients", {"name": "Other"}, headers=key), 409, None)
    assert error["code"] in ("conflict", "idempotency_key_reused")
    assert count(api) == 1


def test_idempotency_keys_are_scoped_to_the_tenant(api):
    key = {"Idempotency-Key": "shared"}
    mine = api.post("/v1/clients", {"name": "Acme"}, headers=key).data
    theirs = api.as_("t2").post("/v1/clients", {"name": "Acme"}, headers=key)
    assert theirs.status_code == 201 and theirs.data["id"] != mine["id"]
    assert count(api.as_("t2")) == 1 and count(api) == 1


def test_without_idempotency_key_each_post_creates(api):
    api.post("/v1/clients?allow_duplicate=true", {"name": "Acme"})
    api.post("/v1/clients?allow_duplicate=true", {"name": "Acme"})
    assert count(api) == 2


# --- If-Match and PATCH ------------------------------------------------------------------------------

def test_stale_if_match_is_412_and_changes_nothing(api):
    client = create(api)
    assert api.patch(f"/v1/clients/{client['id']}", {"phone": "1"}, headers={"If-Match": "1"}).status_code == 200
    response = api.patch(f"/v1/clients/{client['id']}", {"phone": "2"}, headers={"If-Match": "1"})
    assert_envelope(response, 412, "version_conflict")
    current = api.get(f"/v1/clients/{client['id']}").data
    assert (current["phone"], current["version"]) == ("1", 2)


def test_if_match_takes_a_plain_or_quoted_version(api):
    client = create(api)
    plain = api.patch(f"/v1/clients/{client['id']}", {"phone": "1"}, headers={"If-Match": "1"})
    quoted = api.patch(f"/v1/clients/{client['id']}", {"phone": "2"}, headers={"If-Match": '"2"'})
    assert (plain.status_code, quoted.status_code) == (200, 200)
    assert quoted.data["version"] == 3 and quoted.data["phone"] == "2"


def test_if_match_that_is_not_a_version_is_400(api):
    client = create(api)
    assert_envelope(api.patch(f"/v1/clients/{client['id']}", {"phone": "1"}, headers={"If-Match": "abc"}),
                    400, "bad_request")


def test_patch_writes_only_the_named_fields(api):
    client = create(api, email="a@acme.test", phone="111", tags=["gold"], website="acme.test",
                    addresses=[{"kind": "billing", "city": "Ghent"}])
    response = api.patch(f"/v1/clients/{client['id']}", {"phone": "222"})
    assert response.status_code == 200
    changed = {k for k in client if client[k] != response.data[k]}
    assert changed == {"phone", "version", "updated_at"}


def test_two_patches_of_different_fields_both_survive(api):
    client = create(api)
    api.patch(f"/v1/clients/{client['id']}", {"phone": "222"})
    api.patch(f"/v1/clients/{client['id']}", {"email": "b@acme.test"})
    current = api.get(f"/v1/clients/{client['id']}").data
    assert (current["phone"], current["email"], current["version"]) == ("222", "b@acme.test", 3)


def test_read_only_fields_are_422_naming_the_field(api):
    client = create(api)
    read_only = {"id": "x", "client_number": "CLT-2020-000000abcd", "health_score": 99, "version": 7,
                 "created_at": "2020-01-01T00:00:00Z", "lifetime_revenue": "1.00", "at_risk": True,
                 "node_client_id": "n1", "created_by": "me", "archived_at": None, "risk_level": "high"}
    for field, value in read_only.items():
        on_create = api.post("/v1/clients", {"name": "Other", field: value})
        on_patch = api.patch(f"/v1/clients/{client['id']}", {field: value})
        for response in (on_create, on_patch):
            assert_envelope(response, 422, "validation_error")
            assert fields(response) == [field]
    assert count(api) == 1
    assert api.get(f"/v1/clients/{client['id']}").data == client


def test_unknown_fields_are_422_naming_the_field(api):
    response = api.post("/v1/clients", {"name": "Acme", "favourite_colour": "red"})
    assert_envelope(response, 422, "validation_error")
    assert fields(response) == ["favourite_colour"]


# --- tenants and roles -------------------------------------------------------------------------------

def test_another_tenants_client_is_404_never_403(api):
    client = create(api)
    other = api.as_("t2")
    for response in (other.get(f"/v1/clients/{client['id']}"),
                     other.patch(f"/v1/clients/{client['id']}", {"phone": "1"}),
                     other.post(f"/v1/clients/{client['id']}/archive"),
                     other.post(f"/v1/clients/{client['id']}/restore")):
        assert_envelope(response, 404, "not_found")
    assert other.get("/v1/clients").data["items"] == []
    assert api.get(f"/v1/clients/{client['id']}").data == client


def test_staff_token_with_no_roles_is_403_everywhere(api):
    client = create(api)
    for roleless in (api.as_("t1", roles=()), with_token(api, mint_token("t1", None, sub="u2"))):
        for response in (roleless.get("/v1/clients"), roleless.get(f"/v1/clients/{client['id']}"),
                         roleless.get("/v1/clients/chips"), roleless.post("/v1/clients", {"name": "X"}),
                         roleless.get("/v1/settings/client")):
            assert_envelope(response, 403, "forbidden")


def test_viewer_reads_but_cannot_create_or_edit(api):
    client = create(api)
    viewer = api.as_("t1", roles=("viewer",))
    assert viewer.get("/v1/clients").status_code == 200
    assert viewer.get(f"/v1/clients/{client['id']}").status_code == 200
    assert_envelope(viewer.post("/v1/clients", {"name": "X"}), 403, "forbidden")
    assert_envelope(viewer.patch(f"/v1/clients/{client['id']}", {"phone": "1"}), 403, "forbidden")
    assert count(api) == 1


def test_agent_edits_but_cannot_archive_or_restore(api):
    client = create(api)
    agent = api.as_("t1", roles=("agent",))
    assert agent.post("/v1/clients", {"name": "X"}).status_code == 201
    assert agent.patch(f"/v1/clients/{client['id']}", {"phone": "1"}).status_code == 200
    assert_envelope(agent.post(f"/v1/clients/{client['id']}/archive"), 403, "forbidden")
    manager = api.as_("t1", roles=("manager",))
    assert manager.post(f"/v1/clients/{client['id']}/archive").status_code == 200
    assert_envelope(agent.post(f"/v1/clients/{client['id']}/restore"), 403, "forbidden")
    assert manager.post(f"/v1/clients/{client['id']}/restore").status_code == 200


def test_portal_and_integration_tokens_are_403_on_staff_routes(api):
    client = create(api)
    portal = with_token(api, mint_token("t1", ["admin"], sub="contact-1", scope="portal", client_id=client["id"]))
    integration = api.as_("t1", roles=("integration",))
    for principal in (portal, integration):
        for response in (principal.get("/v1/clients"), principal.get(f"/v1/clients/{client['id']}"),
                         principal.post("/v1/clients", {"name": "X"})):
            assert_envelope(response, 403, "forbidden")


def test_missing_garbage_or_expired_token_is_401(api):
    now = int(time.time())
    expired = jwt.encode({"iss": "nexusrms-test", "sub": "u", "tenant_id": "t1", "roles": ["admin"],
                          "iat": now - 7200, "exp": now - 3600}, "test-secret-of-enough-length-for-hs256")
    wrong_key = jwt.encode({"iss": "nexusrms-test", "sub": "u", "tenant_id": "t1", "roles": ["admin"],
                            "exp": now + 3600}, "another-secret-of-enough-length-for-hs256")
    for header in ["", "Bearer", "Bearer garbage", "Basic dXNlcjpwdw==", f"Bearer {expired}",
                   f"Bearer {wrong_key}"]:
        response = api.http.http.request("GET", "/v1/clients", headers={"Authorization": header} if header else {})
        assert_envelope(response, 401, "unauthorized")
    unauthenticated = api.http.http.request("POST", "/v1/clients", body=json.dumps({"name": "X"}),
                                            headers={"Content-Type": "application/json"})
    assert_envelope(unauthenticated, 401, "unauthorized")
    assert count(api) == 0
