"""Bulk actions over HTTP: a result per id in order, the single routes' rules and errors, nothing half-validated."""
from __future__ import annotations

import pytest

from chalicelib.domain import bulk_cases, client_cases
from chalicelib.tables.base import TableItem
from chalicelib.tables.stores import Stores

BULK = "/v1/clients/bulk"


@pytest.fixture(autouse=True)
def one_client_at_a_time(monkeypatch):
    """moto's transactions are not thread-safe (it copies the table while another thread writes it): on moto the
    clients are changed one by one; tests/integration/test_bulk.py runs the workers on DynamoDB Local."""
    monkeypatch.setattr(bulk_cases, "WORKERS", 1)


def _bulk(api, action, client_ids, params=None, **kw):
    body = {"action": action, "client_ids": client_ids}
    if params is not None:
        body["params"] = params
    return api.post(BULK, body, **kw)


def _ok(api, action, client_ids, params=None):
    response = _bulk(api, action, client_ids, params)
    assert response.status_code == 200, response.data
    return response.data


def _client(api, client_id):
    return api.get(f"/v1/clients/{client_id}").data


@pytest.fixture
def book(api):
    """Three clients of tenant t1 (Alpha is a lead, Charlie archived) and one of tenant t2."""
    made = {name: api.post("/v1/clients", {"name": name, "status": status}).data
            for name, status in (("Alpha", "lead"), ("Bravo", "active"), ("Charlie", "inactive"))}
    api.post(f"/v1/clients/{made['Charlie']['id']}/archive")
    made["Charlie"] = _client(api, made["Charlie"]["id"])
    made["Foreign"] = api.as_("t2").post("/v1/clients", {"name": "Foreign"}).data
    return made


@pytest.fixture
def festival(api):
    return api.post("/v1/categories", {"name": "Festival"}).data["id"]


# --- results: one per id, in order -----------------------------------------------------------------

def test_add_category_answers_each_id_in_request_order_and_never_reveals_foreign_clients(api, book, festival):
    ids = [book["Bravo"]["id"], "no-such-client", book["Foreign"]["id"], book["Alpha"]["id"]]
    answer = _ok(api, "add_category", ids, {"category_id": festival})
    assert [r["client_id"] for r in answer["results"]] == ids
    assert [r["ok"] for r in answer["results"]] == [True, False, False, True]
    assert answer["succeeded"] == 2 and answer["failed"] == 2
    unknown, foreign = answer["results"][1]["error"], answer["results"][2]["error"]
    assert unknown == {"code": "not_found", "message": "client no-such-client not found"}
    assert foreign == {"code": "not_found", "message": f"client {book['Foreign']['id']} not found"}
    for name in ("Alpha", "Bravo"):
        after = _client(api, book[name]["id"])
        assert after["category_ids"] == [festival] and after["version"] == book[name]["version"] + 1
    assert api.as_("t2").get(f"/v1/clients/{book['Foreign']['id']}").data == book["Foreign"]
    listed = api.get(f"/v1/clients?category_id={festival}").data["items"]
    assert sorted(c["name"] for c in listed) == ["Alpha", "Bravo"]


def test_a_repeated_id_is_changed_once_and_answered_at_each_place(api, book, festival):
    alpha = book["Alpha"]["id"]
    answer = _ok(api, "add_tag", [alpha, book["Bravo"]["id"], alpha], {"tag": "vip"})
    assert [r["client_id"] for r in answer["results"]] == [alpha, book["Bravo"]["id"], alpha]
    assert answer["succeeded"] == 3 and answer["failed"] == 0
    after = _client(api, alpha)
    assert after["tags"] == ["vip"] and after["version"] == book["Alpha"]["version"] + 1


def test_an_action_that_already_holds_succeeds_without_a_new_version(api, book, festival):
    ids = [book["Alpha"]["id"], book["Bravo"]["id"]]
    _ok(api, "add_category", ids, {"category_id": festival})
    before = [_client(api, cid) for cid in ids]
    again = _ok(api, "add_category", ids, {"category_id": festival})
    assert again["succeeded"] == 2
    assert [_client(api, cid) for cid in ids] == before


# --- each action: the single routes' rules ---------------------------------------------------------

def test_change_status_refuses_archived_clients_with_the_error_patch_gives_and_changes_the_rest(api, book):
    charlie = book["Charlie"]["id"]
    patch = api.patch(f"/v1/clients/{charlie}", {"status": "lead"})
    assert patch.status_code == 409
    answer = _ok(api, "change_status", [book["Alpha"]["id"], charlie, book["Bravo"]["id"]], {"status": "inactive"})
    assert [r["ok"] for r in answer["results"]] == [True, False, True]
    assert answer["results"][1]["error"] == {k: patch.data["error"][k] for k in ("code", "message")}
    assert _client(api, book["Alpha"]["id"])["status"] == "inactive"
    assert _client(api, book["Bravo"]["id"])["status"] == "inactive"
    assert _client(api, charlie) == book["Charlie"]
    assert api.get("/v1/clients/chips").data["inactive"] == 2


def test_archive_then_restore_in_bulk_brings_back_the_status_each_client_held(api, book):
    ids = [book["Alpha"]["id"], book["Bravo"]["id"], book["Charlie"]["id"]]
    archived = _ok(api, "archive", ids)
    assert archived["succeeded"] == 3  # archiving an archived client holds already, as on its own route
    assert {_client(api, cid)["status"] for cid in ids} == {"archived"}
    assert api.get("/v1/clients/chips").data["all"] == 0
    restored = _ok(api, "restore", ids, {})
    assert restored["succeeded"] == 3
    assert [_client(api, cid)["status"] for cid in ids] == ["lead", "active", "inactive"]
    assert api.get("/v1/clients/chips").data["all"] == 3


def test_remove_category_takes_it_off_only_the_named_clients(api, book, festival):
    other = api.post("/v1/categories", {"name": "Theatre"}).data["id"]
    for name in ("Alpha", "Bravo"):
        api.patch(f"/v1/clients/{book[name]['id']}", {"category_ids": [festival, other]})
    answer = _ok(api, "remove_category", [book["Alpha"]["id"]], {"category_id": festival})
    assert answer["succeeded"] == 1
    assert _client(api, book["Alpha"]["id"])["category_ids"] == [other]
    assert _client(api, book["Bravo"]["id"])["category_ids"] == [festival, other]


def test_tags_are_added_and_removed_ignoring_case_like_the_tag_filter(api, book):
    alpha, bravo = book["Alpha"]["id"], book["Bravo"]["id"]
    api.patch(f"/v1/clients/{alpha}", {"tags": ["VIP", "north"]})
    _ok(api, "add_tag", [alpha, bravo], {"tag": "vip"})
    assert _client(api, alpha)["tags"] == ["VIP", "north"] and _client(api, bravo)["tags"] == ["vip"]
    assert len(api.get("/v1/clients?tag=vip").data["items"]) == 2
    _ok(api, "remove_tag", [alpha, bravo], {"tag": "Vip"})
    assert _client(api, alpha)["tags"] == ["north"] and _client(api, bravo)["tags"] == []
    assert api.get("/v1/clients?tag=vip").data["items"] == []


def test_a_tag_beyond_the_twenty_a_patch_allows_fails_that_client_only(api, book):
    full = [f"t{n}" for n in range(20)]
    api.patch(f"/v1/clients/{book['Alpha']['id']}", {"tags": full})
    answer = _ok(api, "add_tag", [book["Alpha"]["id"], book["Bravo"]["id"]], {"tag": "one-more"})
    error = answer["results"][0]["error"]
    assert error["code"] == "validation_error" and error["message"].startswith("tags:")
    assert answer["results"][1]["ok"] is True
    assert _client(api, book["Alpha"]["id"])["tags"] == full


def test_add_to_segment_adds_each_client_once_refuses_archived_ones_and_counts_the_members(api, book):
    segment = api.post("/v1/segments", {"name": "Hand picked", "type": "static"}).data
    members = f"/v1/segments/{segment['id']}/members"
    assert api.post(members, {"client_id": book["Alpha"]["id"]}).status_code == 201
    refused = api.post(members, {"client_id": book["Charlie"]["id"]})
    ids = [book["Alpha"]["id"], book["Bravo"]["id"], book["Charlie"]["id"], book["Foreign"]["id"]]
    answer = _ok(api, "add_to_segment", ids, {"segment_id": segment["id"]})
    assert [r["ok"] for r in answer["results"]] == [True, True, False, False]
    assert answer["results"][2]["error"] == {k: refused.data["error"][k] for k in ("code", "message")}
    assert answer["results"][3]["error"]["code"] == "not_found"
    listed = api.get(members).data["items"]
    assert sorted(m["name"] for m in listed) == ["Alpha", "Bravo"]
    assert all(m["added_method"] == "manual" and m["added_by"] == "user-1" for m in listed)
    assert api.get(f"/v1/segments/{segment['id']}").data["client_count"] == 2


# --- the whole request refused before anything changes -----------------------------------------------

def _unchanged(api, book):
    for name in ("Alpha", "Bravo", "Charlie"):
        assert _client(api, book[name]["id"]) == book[name]


def test_a_segment_that_is_dynamic_unknown_or_foreign_refuses_the_whole_request(api, book):
    dynamic = api.post("/v1/segments", {"name": "Leads", "type": "dynamic", "criteria": {
        "match": "all", "conditions": [{"field": "status", "operator": "equals", "value": "lead"}]}}).data
    theirs = api.as_("t2").post("/v1/segments", {"name": "Theirs", "type": "static"}).data
    ids = [book["Bravo"]["id"]]
    refused = _bulk(api, "add_to_segment", ids, {"segment_id": dynamic["id"]})
    assert refused.status_code == 409 and refused.data["error"]["code"] == "dynamic_segment"
    for segment_id in ("no-such-segment", theirs["id"]):
        answer = _bulk(api, "add_to_segment", ids, {"segment_id": segment_id})
        assert answer.status_code == 422
        assert [d["field"] for d in answer.data["error"]["details"]] == ["params.segment_id"]
    assert [m["name"] for m in api.get(f"/v1/segments/{dynamic['id']}/members").data["items"]] == ["Alpha"]
    _unchanged(api, book)


def test_a_category_that_is_unknown_foreign_or_inactive_refuses_the_whole_request(api, book):
    theirs = api.as_("t2").post("/v1/categories", {"name": "Theirs"}).data["id"]
    dormant = api.post("/v1/categories", {"name": "Dormant", "is_active": False}).data["id"]
    ids = [book["Alpha"]["id"], book["Bravo"]["id"]]
    for action, category_id in (("add_category", "no-such-category"), ("add_category", theirs),
                                ("remove_category", theirs), ("add_category", dormant)):
        answer = _bulk(api, action, ids, {"category_id": category_id})
        assert answer.status_code == 422, (action, category_id)
        assert [d["field"] for d in answer.data["error"]["details"]] == ["params.category_id"]
    _unchanged(api, book)
    # an inactive category can still be taken off
    api.patch(f"/v1/categories/{dormant}", {"is_active": True})
    api.patch(f"/v1/clients/{ids[0]}", {"category_ids": [dormant]})
    api.patch(f"/v1/categories/{dormant}", {"is_active": False})
    assert _ok(api, "remove_category", ids, {"category_id": dormant})["succeeded"] == 2
    assert _client(api, ids[0])["category_ids"] == []


BAD_BODIES = [
    ({"action": "delete", "client_ids": ["a"]}, "action"),
    ({"client_ids": ["a"]}, "action"),
    ({"action": 5, "client_ids": ["a"]}, "action"),
    ({"action": "change_status", "client_ids": ["a"]}, "params"),
    ({"action": "change_status", "client_ids": ["a"], "params": {}}, "params.status"),
    ({"action": "change_status", "client_ids": ["a"], "params": {"status": "archived"}}, "params.status"),
    ({"action": "change_status", "client_ids": ["a"], "params": {"status": "lead", "tag": "x"}}, "params.tag"),
    ({"action": "add_category", "client_ids": ["a"], "params": {"category_id": 7}}, "params.category_id"),
    ({"action": "add_tag", "client_ids": ["a"], "params": {"tag": "   "}}, "params.tag"),
    ({"action": "add_tag", "client_ids": ["a"], "params": {"tag": "x" * 51}}, "params.tag"),
    ({"action": "add_to_segment", "client_ids": ["a"], "params": {"category_id": "c"}}, "params.segment_id"),
    ({"action": "archive", "client_ids": ["a"], "params": {"status": "lead"}}, "params.status"),
    ({"action": "archive", "client_ids": ["a"], "params": None}, "params"),
    ({"action": "archive", "client_ids": []}, "client_ids"),
    ({"action": "archive"}, "client_ids"),
    ({"action": "archive", "client_ids": "a"}, "client_ids"),
    ({"action": "archive", "client_ids": [f"id-{n}" for n in range(501)]}, "client_ids"),
    ({"action": "archive", "client_ids": ["a", "x" * 129]}, "client_ids.1"),
    ({"action": "archive", "client_ids": ["a", 42]}, "client_ids.1"),
    ({"action": "archive", "client_ids": ["a", ""]}, "client_ids.1"),
    ({"action": "archive", "client_ids": ["a"], "extra": True}, "extra"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=[f"{n}-{f}" for n, (_, f) in enumerate(BAD_BODIES)])
def test_bad_bodies_are_422_naming_the_field_and_change_nothing(api, book, body, field):
    body = {**body, "client_ids": [book["Alpha"]["id"], *body["client_ids"][1:]]} \
        if isinstance(body.get("client_ids"), list) and body["client_ids"] else body
    answer = api.post(BULK, body)
    assert answer.status_code == 422, answer.data
    assert answer.data["error"]["code"] == "validation_error"
    assert field in [d["field"] for d in answer.data["error"]["details"]], answer.data
    _unchanged(api, book)


def test_a_body_that_is_not_a_json_object_is_400(api, book):
    for raw in ("[]", "not json", '"archive"'):
        answer = api.post(BULK, raw=raw)
        assert answer.status_code == 400 and answer.data["error"]["code"] == "invalid_json"
    _unchanged(api, book)


def test_five_hundred_ids_are_accepted(api, book):
    ids = [book["Alpha"]["id"]] + [f"missing-{n}" for n in range(499)]
    answer = _ok(api, "add_tag", ids, {"tag": "many"})
    assert len(answer["results"]) == 500 and answer["succeeded"] == 1 and answer["failed"] == 499


# --- who may, replays, races, reads --------------------------------------------------------------------

@pytest.mark.parametrize("role,status", [("viewer", 403), ("agent", 403), ("manager", 200), ("admin", 200)])
def test_bulk_actions_need_a_manager(api, book, role, status):
    answer = _bulk(api.as_(roles=(role,)), "add_tag", [book["Alpha"]["id"]], {"tag": "x"})
    assert answer.status_code == status
    assert _client(api, book["Alpha"]["id"])["tags"] == (["x"] if status == 200 else [])


def test_the_same_idempotency_key_answers_the_first_result_and_applies_nothing_again(api, book):
    alpha = book["Alpha"]["id"]
    key = {"Idempotency-Key": "bulk-tag-1"}
    first = _bulk(api, "add_tag", [alpha, "missing"], {"tag": "vip"}, headers=key)
    api.patch(f"/v1/clients/{alpha}", {"tags": []})  # someone takes the tag off again
    again = _bulk(api, "add_tag", [alpha, "missing"], {"tag": "vip"}, headers=key)
    assert again.status_code == first.status_code == 200
    assert again.data == first.data and again.headers.get("Idempotent-Replayed") == "true"
    assert _client(api, alpha)["tags"] == []
    other = _bulk(api, "add_tag", [alpha], {"tag": "other"}, headers=key)
    assert other.status_code == 409 and other.data["error"]["code"] == "idempotency_key_reused"


def _on_first_batch_get(handler):
    """Run `handler(parsed answer)` after the first BatchGetItem of the next request."""
    events = TableItem._get_connection().connection.client.meta.events
    state = {"done": False}

    def hook(parsed, **_):
        if not state["done"]:
            state["done"] = True
            handler(parsed)

    events.register("after-call.dynamodb.BatchGetItem", hook, unique_id="bulk-test")
    return lambda: events.unregister("after-call.dynamodb.BatchGetItem", unique_id="bulk-test")


def test_a_client_changed_between_the_read_and_the_write_is_retried_and_keeps_the_other_change(api, book):
    alpha, bravo = book["Alpha"]["id"], book["Bravo"]["id"]

    def someone_else_tags_alpha(_parsed):
        client_cases.update_client(Stores("t1"), alpha, {"tags": ["theirs"]})

    stop = _on_first_batch_get(someone_else_tags_alpha)
    try:
        answer = _ok(api, "add_tag", [alpha, bravo], {"tag": "ours"})
    finally:
        stop()
    assert answer["succeeded"] == 2
    assert _client(api, alpha)["tags"] == ["theirs", "ours"]
    assert _client(api, alpha)["version"] == book["Alpha"]["version"] + 2
    assert _client(api, bravo)["tags"] == ["ours"] and _client(api, bravo)["version"] == book["Bravo"]["version"] + 1


def test_keys_the_database_leaves_unprocessed_are_read_again(api, book):
    ids = [book["Alpha"]["id"], book["Bravo"]["id"]]
    calls = []
    events = TableItem._get_connection().connection.client.meta.events

    def asked(params, **_):
        calls.append(params["RequestItems"])

    def throttle_half(parsed, **_):
        if len(calls) == 1:  # the first answer keeps one key back, as a throttled partition does
            table, items = next(iter(parsed["Responses"].items()))
            held = items.pop()
            parsed["UnprocessedKeys"] = {table: {"Keys": [{"pk": held["pk"], "sk": held["sk"]}],
                                                 "ConsistentRead": True}}

    events.register("provide-client-params.dynamodb.BatchGetItem", asked, unique_id="bulk-asked")
    events.register("after-call.dynamodb.BatchGetItem", throttle_half, unique_id="bulk-throttle")
    try:
        answer = _ok(api, "add_tag", ids, {"tag": "read-twice"})
    finally:
        events.unregister("provide-client-params.dynamodb.BatchGetItem", unique_id="bulk-asked")
        events.unregister("after-call.dynamodb.BatchGetItem", unique_id="bulk-throttle")
    assert answer["succeeded"] == 2 and len(calls) == 2
    assert all(table["ConsistentRead"] for call in calls for table in call.values())
    assert [_client(api, cid)["tags"] for cid in ids] == [["read-twice"], ["read-twice"]]


def test_clients_not_reached_in_time_answer_unavailable_and_stay_unchanged(api, book, monkeypatch):
    monkeypatch.setattr(bulk_cases, "seconds_for_clients", lambda: 0.0)
    answer = _ok(api, "add_tag", [book["Alpha"]["id"], book["Bravo"]["id"]], {"tag": "late"})
    assert answer["failed"] == 2
    assert {r["error"]["code"] for r in answer["results"]} == {"unavailable"}
    _unchanged(api, book)


def test_the_openapi_document_shows_each_actions_params(api):
    schemas = api.get("/v1/openapi.json").data["components"]["schemas"]
    mapping = schemas["BulkIn"]["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(["change_status", "archive", "restore", "add_category", "remove_category",
                                      "add_tag", "remove_tag", "add_to_segment"])
    status = schemas[mapping["change_status"].rsplit("/", 1)[-1]]["properties"]["params"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[status]["properties"]["status"]["enum"] == ["lead", "trial", "active", "inactive"]
