"""Bad input is a 4xx, never a 500 or a silent acceptance: bodies, ids, dates and list parameters (contract §16)."""
from __future__ import annotations

import base64
import email
import email.policy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

import app  # noqa: F401 - registers every route in ROUTES
from chalicelib.config import get_settings, reset_settings
from chalicelib.domain.communications import UnmatchedEmail
from chalicelib.domain.contacts import invitation_token
from chalicelib.handlers.routing import MAX_JSON_DEPTH, ROUTES
from chalicelib.tables.activity import ActivityRepository
from chalicelib.tables.inbox import InboxRepository
from chalicelib.tables.stores import Stores
from tests.api.conftest import Api, PortalUser

LONG = "x" * 129  # one over the longest id (128)
DEEP = "[" * 1000 + "]" * 1000
LIST_ROUTES = [r for r in ROUTES if r.list_response]
BODY_ROUTES = [r for r in ROUTES if r.body is not None and r.path != "/v1/webhooks/node"]
PARAM_ROUTES = [r for r in ROUTES if "{" in r.path]


def _name(doc) -> str:
    return f"{doc.method} {doc.path}"


pytestmark = pytest.mark.usefixtures("local_mail")  # invitations go to the outbox of DATA_DIR


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.data)
    assert response.data["error"]["code"] == code, response.data
    return response.data["error"]


def _fields(response) -> set[str]:
    return {d["field"] for d in response.data["error"]["details"]}


def _invitation_link_token(tmp_path: Path) -> str:
    [path] = (tmp_path / "outbox").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    links = re.findall(r"https?://[^\s\"'<>]+", message.get_body(("plain",)).get_content())
    return next(t for link in links for t in parse_qs(urlparse(link).query).get("token", []))


@pytest.fixture
def client_id(api) -> str:
    """A client with two phone calls that need a follow-up (in January and February 2026)."""
    made = api.post("/v1/clients", {"name": "Acme"}).data["id"]
    for n in (1, 2):
        assert api.post(f"/v1/clients/{made}/communications", {
            "type": "phone", "direction": "inbound", "subject": f"Call {n}", "requires_followup": True,
            "followup_date": f"2026-0{n}-01"}).status_code == 201
    return made


@pytest.fixture
def unmatched(aws) -> list[str]:
    """Three inbound emails from unknown senders, received on 1, 2 and 3 January 2026."""
    inbox = InboxRepository("t1")
    for n in range(3):
        inbox.add_unmatched(UnmatchedEmail(id=f"01J000000000000000000000{n:02}", from_email=f"who{n}@elsewhere.test",
                                           received_at=datetime(2026, 1, 1 + n, tzinfo=UTC),
                                           subject=f"Hello {n}", bucket="b", key=f"k{n}"))
    return [f"01J000000000000000000000{n:02}" for n in range(3)]


@pytest.fixture
def world(api, tmp_path, unmatched):
    """Tenant t1 with at least two items in every list, and a signed-in portal contact."""
    def made(response):
        assert response.status_code in (200, 201), (response.status_code, response.data)
        return response.data

    made(api.patch("/v1/settings/portal", {"enabled": True}))
    made(api.post("/v1/settings/custom-fields", {"key": "ref", "label": "Ref", "type": "text"}))
    parent = made(api.post("/v1/categories", {"name": "Parent"}))
    made(api.post("/v1/categories", {"name": "Child A", "parent_id": parent["id"]}))
    made(api.post("/v1/categories", {"name": "Child B", "parent_id": parent["id"]}))
    acme = made(api.post("/v1/clients", {"name": "Acme"}))
    bolt = made(api.post("/v1/clients", {"name": "Bolt"}))
    ivy = made(api.post("/v1/clients", {"name": "Ivy", "type": "individual"}))
    hall = made(api.post("/v1/clients", {"name": "Hall", "type": "venue"}))
    for twin in ("Acme GmbH", "Bolt Ltd"):  # possible duplicates, listed as the stream (not run by moto) lists them
        made(api.post("/v1/clients?allow_duplicate=true", {"name": twin}))
    for key in ("acme|", "bolt|"):
        Stores("t1").duplicates.sync("name", key)
    base = f"/v1/clients/{acme['id']}"
    made(api.post(f"{base}/associations", {"related_id": ivy["id"]}))
    made(api.post(f"{base}/associations", {"related_id": hall["id"]}))
    sam = made(api.post(f"{base}/contacts", {"full_name": "Sam Second", "email": "sam@acme.test"}))
    pat = made(api.post(f"{base}/contacts", {"full_name": "Pat Primary", "email": "pat@acme.test"}))
    made(api.put(f"{base}/contacts/{pat['id']}/portal-access", {"enabled": True}))
    threads = [made(api.post(f"{base}/threads", {"subject": s})) for s in ("Rig", "Crew")]
    comms = [made(api.post(f"{base}/communications", {
        "type": "phone", "direction": "inbound", "subject": f"Call {n}", "thread_id": thread["id"],
        "requires_followup": True, "followup_date": f"2026-0{n}-01"})) for n, thread in enumerate(threads, 1)]
    tasks = [made(api.post(f"{base}/tasks", {"title": t})) for t in ("Call back", "Send quote")]
    segments = [made(api.post("/v1/segments", {"name": n, "type": "static"})) for n in ("Gold", "Silver")]
    for segment in segments:
        made(api.post(f"/v1/segments/{segment['id']}/members", {"client_id": acme["id"]}))
    made(api.post(f"/v1/segments/{segments[0]['id']}/members", {"client_id": bolt["id"]}))
    made(api.post(f"{base}/feedback", {"rating": 4}))
    made(api.post(f"{base}/lead-score/recalculate"))
    for kind, number in (("quote", "Q-1"), ("quote", "Q-2"), ("invoice", "INV-1"), ("invoice", "INV-2")):
        made(api.put(f"/v1/integrations/invoices/{number}", {"client_id": acme["id"], "kind": kind,
                                                            "amount": "10.00", "status": "open"}))
    made(api.put("/v1/integrations/projects/P-1", {"client_id": acme["id"], "status": "active"}))
    imports = [made(api.call("POST", "/v1/clients/import", raw=f"name,email\nRow {n},not-an-email\n".encode(),
                             headers={"Content-Type": "text/csv"})) for n in (1, 2)]  # recorded, creating nothing
    ActivityRepository("t1").write([  # the timeline is written from the table's stream, which moto does not run
        {"client_id": acme["id"], "id": f"event-{n}", "at": datetime(2026, 1, n, tzinfo=UTC),
         "actor": "user-1", "action": "updated", "entity_type": "client", "entity_id": acme["id"], "changes": {}}
        for n in (1, 2)])
    accepted = api.call("POST", "/v1/portal/invitations/accept", {"token": _invitation_link_token(tmp_path)},
                        headers={"Authorization": ""})
    user = PortalUser(api.http, made(accepted)["access_token"])
    made(user.get("/v1/portal/me"))
    return {
        "user": user,
        "params": {"client_id": acme["id"], "category_id": parent["id"], "segment_id": segments[0]["id"],
                   "comm_id": comms[0]["id"], "thread_id": threads[0]["id"], "contact_id": sam["id"],
                   "task_id": tasks[0]["id"], "related_id": ivy["id"], "item_id": unmatched[0], "key": "ref",
                   "project_id": "P-1", "invoice_id": "INV-1", "quote_id": "Q-1", "export_id": "01J0EXPORT",
                   "import_id": imports[0]["id"]},
    }


def _caller(api, world, doc) -> Api:
    return world["user"] if doc.need == "portal" else api


def _path(doc, params: dict, **override) -> str:
    return re.sub(r"{(\w+)}", lambda m: override.get(m.group(1), params[m.group(1)]), doc.path)


# --- item 10: bodies are UTF-8 JSON nested at most 64 deep; invitation tokens are checked before any key is built


@pytest.mark.parametrize("where", [
    "t#1\nclient\ncontact",  # a tenant that cannot lead a key
    f"{'t' * 200}\nclient\ncontact",
    f"t1\n{'c' * 300}\ncontact",
    "t1\nclient\nco#ntact",
    "t1\nclient",
    "t1\n\ncontact",
])
def test_an_invitation_token_whose_parts_are_not_ids_is_401(api, where):
    token = base64.urlsafe_b64encode(where.encode()).decode().rstrip("=") + ".secret"
    response = api.call("POST", "/v1/portal/invitations/accept", {"token": token}, headers={"Authorization": ""})
    _error(response, 401, "unauthorized")


def test_an_invitation_token_that_is_not_base64_text_is_401(api):
    for token in ("%%%.secret", base64.urlsafe_b64encode(b"\xff\xfe\n\x00").decode() + ".s", "no-dot-here"):
        response = api.call("POST", "/v1/portal/invitations/accept", {"token": token}, headers={"Authorization": ""})
        _error(response, 401, "unauthorized")


def test_a_well_formed_invitation_token_of_an_unknown_contact_is_401(api):
    token = invitation_token("t1", "01J0CLIENT", "01J0CONTACT", "secret")
    response = api.call("POST", "/v1/portal/invitations/accept", {"token": token}, headers={"Authorization": ""})
    _error(response, 401, "unauthorized")


def _wrong(answers: dict[str, object], status: int, code: str) -> dict[str, object]:
    """The answers (by route) that are not `status` with `code`."""
    return {name: (r.status_code, r.data) for name, r in answers.items()
            if r.status_code != status or r.data["error"]["code"] != code}


def test_json_nested_1000_levels_is_400_invalid_json_on_every_json_route(api, world):
    answers = {_name(doc): _caller(api, world, doc).call(
        doc.method, _path(doc, world["params"]), raw=DEEP,
        headers={"Authorization": ""} if doc.need == "public" else None) for doc in BODY_ROUTES}
    assert _wrong(answers, 400, "invalid_json") == {}


def test_json_nested_deeper_than_64_levels_is_400_and_64_levels_are_taken(api):
    def nested(levels: int) -> str:  # the body is level 1, custom_fields level 2, then the arrays
        return '{"name": "Acme", "custom_fields": {"ref": ' + "[" * (levels - 2) + "]" * (levels - 2) + "}}"

    assert MAX_JSON_DEPTH == 64
    deeper = api.post("/v1/clients", raw=nested(65))
    assert _error(deeper, 400, "invalid_json")["message"] == "the body is nested deeper than 64 levels"
    at_limit = api.post("/v1/clients", raw=nested(64))
    assert at_limit.status_code == 422  # parsed, then refused as a value: not a JSON problem
    assert _fields(at_limit) == {"custom_fields.ref"}


@pytest.fixture
def signed(api, monkeypatch):
    secret = "whsec_" + base64.b64encode(b"node-platform-test-key!!").decode()
    monkeypatch.setenv("NODE_WEBHOOK_SECRET", secret)
    reset_settings()
    get_settings()

    def send(body: str):
        when = datetime.now(UTC)
        headers = {"webhook-id": "w-1", "webhook-timestamp": str(int(when.timestamp())),
                   "webhook-signature": Webhook(secret).sign("w-1", when, body), "Content-Type": "application/json"}
        response = api.http.http.request("POST", "/v1/webhooks/node", headers=headers, body=body.encode())
        response.data = json.loads(response.body)
        return response
    return send


def test_a_signed_webhook_nested_1000_levels_deep_is_400_invalid_json(signed):
    _error(signed('{"type": "user.upserted", "data": ' + DEEP + "}"), 400, "invalid_json")


@pytest.mark.parametrize("raw", [
    json.dumps({"name": "Acme"}).encode("utf-16"),  # with its BOM
    json.dumps({"name": "Acme"}).encode("utf-16-le"),
    json.dumps({"name": "Acme"}).encode("utf-32"),
    b"\xef\xbb\xbf" + json.dumps({"name": "Acme"}).encode(),  # UTF-8 with a BOM
    '{"name": "Café"}'.encode("latin-1"),
    b'{"name": "Acme \\ud800"}',  # a lone surrogate: no UTF-8 text holds it
    b'{"name": "Acme", "credit_limit": NaN}',
], ids=["utf-16", "utf-16-le", "utf-32", "utf-8-bom", "latin-1", "lone-surrogate", "nan"])
def test_a_body_that_is_not_utf8_json_is_400_invalid_json(api, raw):
    _error(api.post("/v1/clients", raw=raw), 400, "invalid_json")


def test_a_signed_webhook_with_a_byte_order_mark_is_400_invalid_json(signed):
    # Standard Webhooks signs text, so only UTF-8 can carry a valid signature (UTF-16 is a 401); a BOM can.
    body = "\ufeff" + json.dumps({"type": "user.upserted", "tenant_id": "t1", "data": {}})
    _error(signed(body), 400, "invalid_json")


def test_utf8_text_beyond_ascii_is_taken(api):
    created = api.post("/v1/clients", raw='{"name": "Café Ünïcødé 😀"}'.encode())
    assert created.status_code == 201 and created.data["name"] == "Café Ünïcødé 😀"


# --- item 11: ids longer than 128 characters: 404 in a path, 422 in a body, 400 in a query


def test_a_path_id_longer_than_128_characters_is_404_on_every_route(api, world):
    answers = {}
    for doc in PARAM_ROUTES:
        for param in re.findall(r"{(\w+)}", doc.path):
            for value in (LONG, "x" * 3000):
                url = _path(doc, world["params"], **{param: value})
                answers[f"{_name(doc)} {param}={len(value)}"] = _caller(api, world, doc).call(
                    doc.method, url, body={} if doc.body else None)
    assert len(answers) > 60
    assert _wrong(answers, 404, "not_found") == {}


def test_a_path_id_of_128_characters_is_an_id_like_any_other(api, client_id):
    project = api.put(f"/v1/integrations/projects/{'p' * 128}", {"client_id": client_id, "status": "active"})
    assert project.status_code == 201, project.data
    assert api.get(f"/v1/integrations/projects/{'p' * 128}").data["id"] == "p" * 128


def _id_fields(model) -> list[str]:
    return [name for name in model.model_fields if name.endswith(("_id", "_ids"))]


BODY_IDS = [(doc, name) for doc in BODY_ROUTES for name in _id_fields(doc.body)]


def test_every_id_field_of_a_body_is_found():  # the enumeration below must not silently cover nothing
    names = {name for _, name in BODY_IDS}
    assert {"client_id", "contact_ids", "project_id", "related_id", "category_ids", "parent_id", "thread_id",
            "client_contact_id", "assignee_id"} <= names


def test_an_id_longer_than_128_characters_in_a_body_is_422_naming_the_field(api, world):
    answers = {f"{_name(doc)} {field}": _caller(api, world, doc).call(
        doc.method, _path(doc, world["params"]), {field: [LONG] if field.endswith("_ids") else LONG})
        for doc, field in BODY_IDS}
    assert _wrong(answers, 422, "validation_error") == {}
    unnamed = {name: r.data for name, r in answers.items()
               if not {name.split()[-1], name.split()[-1] + ".0"} & _fields(r)}
    assert unnamed == {}


QUERY_IDS = [(doc, name) for doc in ROUTES if doc.query is not None for name in _id_fields(doc.query)]


def test_an_id_longer_than_128_characters_in_a_query_is_400_naming_the_parameter(api, world):
    assert {name for _, name in QUERY_IDS} >= {"category_id", "segment_id", "contact_id", "project_id", "thread_id"}
    for doc, param in QUERY_IDS:
        url = _path(doc, world["params"])
        response = _caller(api, world, doc).get(f"{url}?{param}={LONG}")
        assert _fields(response) == {param} and _error(response, 400, "bad_request")
        exactly = _caller(api, world, doc).get(f"{url}?{param}={'x' * 128}", headers={"Accept": "text/csv"})
        assert exactly.status_code == 200 and _no_items(exactly), (_name(doc), exactly.data)  # an id, of nothing


def _no_items(response) -> bool:
    """A list answers no items; a CSV export only its header row."""
    if response.headers["Content-Type"].startswith("text/csv"):
        return response.body.count(b"\r\n") == 1
    return response.data["items"] == []


# --- item 12: dates before 1970 in communication filters


def test_communication_filters_before_1970_are_answered(api, client_id):
    url = f"/v1/clients/{client_id}/communications"
    everything = api.get(url).data["items"]
    assert len(everything) >= 2
    assert api.get(f"{url}?from=1969-12-31").data["items"] == everything
    assert api.get(f"{url}?from=0001-01-01&to=9999-12-31").data["items"] == everything
    assert api.get(f"{url}?to=0001-01-01").data["items"] == []
    assert api.get(f"{url}?from=0001-01-01&to=1969-12-31").data["items"] == []
    assert api.get(f"{url}?to=1970-01-01").data["items"] == []


def test_a_communication_that_occurred_before_1970_is_422(api, client_id):
    url = f"/v1/clients/{client_id}/communications"
    response = api.post(url, {"type": "note", "body": "old", "occurred_at": "1969-12-31T23:59:59Z"})
    assert _fields(response) == {"occurred_at"} and _error(response, 422, "validation_error")
    assert api.post(url, {"type": "note", "body": "new", "occurred_at": "1970-01-01T00:00:00Z"}).status_code == 201


# --- item 13: every list pages and validates the same way


def test_every_list_route_is_exercised():
    assert len(LIST_ROUTES) >= 20 and any(r.path == "/v1/inbox/unmatched" for r in LIST_ROUTES)


def test_every_list_refuses_a_limit_outside_1_to_100_and_a_forged_cursor(api, world):
    payload = base64.urlsafe_b64encode(b'{"t":"t1","s":"x","p":["z"]}').decode().rstrip("=")
    forged = payload + "." + base64.urlsafe_b64encode(b"\0" * 32).decode().rstrip("=")
    foreign = api.get("/v1/clients?limit=1").data["next_cursor"]  # signed, but for another list
    limits, cursors = {}, {}
    for doc in LIST_ROUTES:
        caller, url = _caller(api, world, doc), _path(doc, world["params"])
        for limit in ("0", "1000", "-1", "abc"):
            limits[f"{_name(doc)} limit={limit}"] = caller.get(f"{url}?limit={limit}")
        for name, cursor in (("forged", forged), ("garbage", "not-a-cursor"), ("foreign", foreign)):
            if not (name == "foreign" and doc.path == "/v1/clients"):
                cursors[f"{_name(doc)} {name}"] = caller.get(f"{url}?cursor={cursor}")
    assert _wrong(limits, 400, "bad_request") == {}
    assert {name: _fields(r) for name, r in limits.items() if _fields(r) != {"limit"}} == {}
    assert _wrong(cursors, 400, "invalid_cursor") == {}


def _walk(caller, url: str, limit: int) -> list:
    items, cursor = [], None
    while True:
        page = caller.get(f"{url}?limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status_code == 200, (url, page.data)
        assert len(page.data["items"]) <= limit
        items.extend(page.data["items"])
        cursor = page.data["next_cursor"]
        if cursor is None:
            return items
        assert len(items) < 1000, "the cursor never ends"


def test_every_list_pages_through_all_its_items_once_with_limit_1(api, world):
    short = []
    for doc in LIST_ROUTES:
        caller, url = _caller(api, world, doc), _path(doc, world["params"])
        everything = _walk(caller, url, 100)
        assert _walk(caller, url, 1) == everything, _name(doc)
        if len(everything) < 2:
            short.append(_name(doc))
    assert short == []  # every list had a second page to find


def test_the_unmatched_inbox_pages_newest_first(api, unmatched):
    first = api.get("/v1/inbox/unmatched?limit=2").data
    assert [i["subject"] for i in first["items"]] == ["Hello 2", "Hello 1"] and first["next_cursor"]
    rest = api.get(f"/v1/inbox/unmatched?limit=2&cursor={first['next_cursor']}").data
    assert [i["subject"] for i in rest["items"]] == ["Hello 0"] and rest["next_cursor"] is None
    assert len(api.get("/v1/inbox/unmatched").data["items"]) == 3  # the default limit (25) holds them all
    _error(api.as_("t2").get(f"/v1/inbox/unmatched?cursor={first['next_cursor']}"), 400, "invalid_cursor")


# --- item 14: booleans are not numbers, numbers not booleans, dates only YYYY-MM-DD, timestamps only ISO 8601


@pytest.mark.parametrize("value", ["0", "1700000000", "20260101", "2026-01-01T00:00:00Z", "tomorrow"])
def test_a_date_query_parameter_takes_only_yyyy_mm_dd(api, client_id, value):
    response = api.get(f"/v1/follow-ups?due_before={value}")
    assert _fields(response) == {"due_before"} and _error(response, 400, "bad_request")
    url = f"/v1/clients/{client_id}/communications"
    assert _fields(api.get(f"{url}?from={value}")) == {"from"}


def test_a_date_query_parameter_in_yyyy_mm_dd_is_taken(api, client_id):
    assert len(api.get("/v1/follow-ups?due_before=2026-01-15").data["items"]) == 1


@pytest.mark.parametrize("field,value", [
    ("sort_order", False), ("sort_order", True), ("sort_order", "3"), ("sort_order", 1.5),
    ("is_active", 1), ("is_active", 0), ("is_public", "true"), ("name", 5),
])
def test_a_category_refuses_json_of_the_wrong_type(api, field, value):
    response = api.post("/v1/categories", {"name": "Cat", field: value})
    assert _fields(response) == {field} and _error(response, 422, "validation_error")


@pytest.mark.parametrize("body,field", [
    ({"payment_terms_days": True}, "payment_terms_days"),
    ({"payment_terms_days": 30.5}, "payment_terms_days"),
    ({"credit_limit": True}, "credit_limit"),
    ({"tax_exempt": 0}, "tax_exempt"),
    ({"tax_exempt": "false"}, "tax_exempt"),
])
def test_a_client_refuses_booleans_for_numbers_and_numbers_for_booleans(api, body, field):
    response = api.post("/v1/clients", {"name": "Acme", **body})
    assert _fields(response) == {field} and _error(response, 422, "validation_error")


def test_money_is_taken_as_a_decimal_string_or_a_json_number(api):
    assert api.post("/v1/clients", {"name": "A", "credit_limit": "1250.50"}).data["credit_limit"] == "1250.50"
    assert api.post("/v1/clients", {"name": "B", "credit_limit": 1250.5}).data["credit_limit"] == "1250.50"


@pytest.mark.parametrize("body,field", [
    ({"followup_date": 0}, "followup_date"),
    ({"followup_date": "0"}, "followup_date"),
    ({"meeting_date": "2026-01-01T10:00:00Z"}, "meeting_date"),
    ({"occurred_at": 1700000000}, "occurred_at"),
    ({"occurred_at": "1700000000"}, "occurred_at"),
    ({"occurred_at": "2026-01-01"}, "occurred_at"),
    ({"duration_minutes": True}, "duration_minutes"),
    ({"requires_followup": 1}, "requires_followup"),
])
def test_a_communication_takes_dates_and_timestamps_only_in_iso_form(api, client_id, body, field):
    url = f"/v1/clients/{client_id}/communications"
    response = api.post(url, {"type": "phone", "direction": "inbound", **body})
    assert _fields(response) == {field} and _error(response, 422, "validation_error")


def test_iso_timestamps_with_a_zone_are_taken(api, client_id):
    url = f"/v1/clients/{client_id}/communications"
    for value, stored in (("2026-05-01T09:30:00Z", "2026-05-01T09:30:00.000Z"),
                          ("2026-05-01T11:30:00.25+02:00", "2026-05-01T09:30:00.250Z")):
        created = api.post(url, {"type": "note", "body": "x", "occurred_at": value})
        assert created.status_code == 201 and created.data["occurred_at"] == stored


@pytest.mark.parametrize("path,body,field", [
    ("/v1/integrations/invoices/INV-9", {"issued_at": 0}, "issued_at"),
    ("/v1/integrations/invoices/INV-9", {"due_date": 1700000000}, "due_date"),
    ("/v1/integrations/invoices/INV-9", {"paid_at": "1700000000"}, "paid_at"),
    ("/v1/integrations/projects/P-9", {"start_date": "0"}, "start_date"),
])
def test_integration_facts_take_dates_only_in_iso_form(api, client_id, path, body, field):
    base = {"client_id": client_id, "status": "open", "kind": "invoice", "amount": "1.00"} \
        if "invoices" in path else {"client_id": client_id, "status": "active"}
    response = api.put(path, {**base, **body})
    assert _fields(response) == {field} and _error(response, 422, "validation_error")


def test_a_task_due_date_takes_only_yyyy_mm_dd(api, client_id):
    response = api.post(f"/v1/clients/{client_id}/tasks", {"title": "T", "due_date": 0})
    assert _fields(response) == {"due_date"} and _error(response, 422, "validation_error")


@pytest.mark.parametrize("method,path,body,field", [
    ("PUT", "/v1/settings/client", {"default_payment_terms_days": True}, "default_payment_terms_days"),
    ("PATCH", "/v1/settings/client", {"new_client_days": False}, "new_client_days"),
    ("PATCH", "/v1/settings/portal", {"enabled": 1}, "enabled"),
    ("PATCH", "/v1/settings/lead-score-thresholds", {"hot": True}, "hot"),
    ("POST", "/v1/clients/{client_id}/feedback", {"rating": True}, "rating"),
])
def test_bodies_described_by_domain_models_are_strict_too(api, client_id, method, path, body, field):
    response = api.call(method, path.format(client_id=client_id), body)
    assert _fields(response) == {field} and _error(response, 422, "validation_error")


def _date_fields(model) -> list[str]:
    """The fields (by their JSON name) whose JSON schema is a date or date-time (also inside anyOf, and in each
    branch of a body that is a union, such as the bulk action's)."""
    schema = model.model_json_schema(mode="validation")
    branches = [schema["$defs"][o["$ref"].rsplit("/", 1)[-1]] for o in schema.get("oneOf", [])] or [schema]
    props = {name: prop for branch in branches for name, prop in branch.get("properties", {}).items()}
    formats = lambda p: {p.get("format")} | {x.get("format") for x in p.get("anyOf", [])}  # noqa: E731
    return [name for name, prop in props.items() if formats(prop) & {"date", "date-time"}]


# The Node webhook's event is the Node platform's own format, read by its domain model (not an edge model).
MODELS = {id(m): m for r in ROUTES for m in (r.body, r.query) if m is not None and r.path != "/v1/webhooks/node"}


def test_the_date_fields_of_bodies_and_queries_are_found():
    found = {name for m in MODELS.values() for name in _date_fields(m)}
    assert {"followup_date", "meeting_date", "occurred_at", "from", "to", "due_before", "due_date", "issued_at",
            "paid_at", "start_date", "end_date"} <= found


@pytest.mark.parametrize("model", list(MODELS.values()), ids=lambda m: m.__name__)
def test_no_date_field_of_any_body_or_query_takes_a_unix_time(model):
    is_query = any(r.query is model for r in ROUTES)
    for key in _date_fields(model):
        for value in (0, "0", "1700000000"):
            if is_query and not isinstance(value, str):
                continue
            with pytest.raises(ValidationError) as raised:
                if is_query:
                    model.model_validate({key: value})
                else:
                    model.model_validate_json(json.dumps({key: value}), strict=True)
            assert any(e["loc"][:1] == (key,) for e in raised.value.errors()), (key, value)
