"""Parallel requests over real HTTP on DynamoDB Local: replays apply once, writes without If-Match never 412."""
from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.integration.conftest import Live

pytestmark = pytest.mark.ddb

SECRET = "whsec_" + base64.b64encode(b"node-platform-test-key!!").decode()
USER = {"id": "u-1", "full_name": "Nora Node", "email": "nora@acme.test", "phone": "+32 1", "job_title": "TD",
        "updated_at": "2026-11-01T10:00:00Z"}


@pytest.fixture(autouse=True)
def node_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before `live` reads the settings: the Node platform's signing secret."""
    monkeypatch.setenv("NODE_WEBHOOK_SECRET", SECRET)


def webhook(live: Live, webhook_id: str, type_: str, data: dict) -> requests.Response:
    """A Node platform webhook for live's tenant, signed as Node signs it."""
    body = json.dumps({"type": type_, "tenant_id": live.tenant, "occurred_at": "2026-11-01T10:00:00Z",
                       "data": data})
    now = datetime.now(UTC)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(SECRET).sign(webhook_id, now, body), "Content-Type": "application/json"}
    return requests.post(live.base + "/v1/webhooks/node", data=body, headers=headers, timeout=60)


def parallel(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls at once: each thread waits at a barrier, so they reach the server together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@contextlib.contextmanager
def stream_rescoring(client_id: str) -> Iterator[None]:
    """While the block runs, the stream's rescore of the client runs again and again (its derived writes race
    the requests'); an error in it fails the test."""
    from chalicelib.handlers.stream import EFFECTS
    from chalicelib.tables.stores import Stores

    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        while not stop.is_set():
            try:
                EFFECTS["rescore"](Stores("t1"), client_id)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    rescorer = threading.Thread(target=run)
    rescorer.start()
    try:
        yield
    finally:
        stop.set()
        rescorer.join(30)
    assert not failures, failures


def linked_client(live: Live) -> str:
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    assert webhook(live, "w-link", "client.linked", {"node_client_id": "n-1", "client_id": client["id"]}).ok
    return client["id"]


def contacts(live: Live, client_id: str) -> list[dict]:
    return live.ok("GET", f"/v1/clients/{client_id}/contacts?limit=100")["items"]


# --- Node webhooks (issue 12, item 7) ----------------------------------------------------------------

def test_three_parallel_deliveries_of_one_webhook_apply_once(live):
    client_id = linked_client(live)
    answers = parallel([lambda: webhook(live, "w-user", "user.upserted", {"node_client_id": "n-1", "user": USER})
                        for _ in range(3)])
    statuses = [(a.status_code, a.json().get("status") or a.json()["error"]["code"]) for a in answers]
    assert statuses.count((200, "processed")) == 1, statuses
    # The others saw it processed, or still running: then they are told to come back (Node retries).
    assert set(statuses) <= {(200, "processed"), (200, "duplicate"), (409, "webhook_in_progress")}, statuses
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 409)
    assert len(contacts(live, client_id)) == 1
    again = webhook(live, "w-user", "user.upserted", {"node_client_id": "n-1", "user": USER})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})


def test_three_different_webhook_ids_for_one_new_node_user_create_one_contact(live):
    client_id = linked_client(live)
    answers = parallel([lambda n=n: webhook(live, f"w-{n}", "user.upserted", {"node_client_id": "n-1", "user": USER})
                        for n in range(3)])
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "processed"})] * 3
    found = contacts(live, client_id)
    assert len(found) == 1 and found[0]["node_user_id"] == "u-1" and found[0]["synced_from_node"]


def test_parallel_deliveries_for_a_node_user_link_the_contact_with_its_email_once(live):
    client_id = linked_client(live)
    manual = live.ok("POST", f"/v1/clients/{client_id}/contacts",
                     {"full_name": "Nora N.", "email": "NORA@acme.test"}, status=201)
    answers = parallel([lambda n=n: webhook(live, f"w-{n}", "user.upserted", {"node_client_id": "n-1", "user": USER})
                        for n in range(3)])
    assert [a.status_code for a in answers] == [200] * 3
    found = contacts(live, client_id)
    assert [(c["id"], c["node_user_id"], c["full_name"]) for c in found] == [(manual["id"], "u-1", "Nora Node")]


def test_a_delivery_that_fails_frees_its_webhook_id_for_nodes_retry(live):
    linked_client(live)
    unknown = {"node_client_id": "n-1", "user_id": "u-1", "user": {**USER, "email": "not an email"}}
    assert webhook(live, "w-bad", "user.upserted", unknown).status_code == 422
    fixed = webhook(live, "w-bad", "user.upserted", {"node_client_id": "n-1", "user": USER})
    assert (fixed.status_code, fixed.json()) == (200, {"status": "processed"})


# --- writes without If-Match (issue 12, item 8) ------------------------------------------------------

CLIENT_FIELDS = {"phone": "+31 20 555 0100", "fax": "+31 20 555 0101", "website": "https://acme.test",
                 "industry": "Events", "registration_number": "KVK-1", "vat_number": "NL001",
                 "email": "office@acme.test", "pipeline_stage": "proposal", "payment_terms_days": 45,
                 "communication_preference": "phone"}


def test_ten_parallel_patches_of_one_client_without_if_match_all_land(live):
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    path = f"/v1/clients/{client['id']}"
    with stream_rescoring(client["id"]):  # each field moves the lead score: the stream writes derived figures
        answers = parallel([lambda f=f, v=v: live.call("PATCH", path, {f: v}) for f, v in CLIENT_FIELDS.items()])
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
    stored = live.ok("GET", path)
    assert {f: stored[f] for f in CLIENT_FIELDS} == CLIENT_FIELDS
    assert stored["version"] == client["version"] + 10


def test_parallel_patches_with_a_stale_if_match_give_one_200_and_the_rest_412(live):
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    path = f"/v1/clients/{client['id']}"
    match = {"If-Match": str(client["version"])}
    answers = parallel([lambda f=f, v=v: live.call("PATCH", path, {f: v}, headers=match)
                        for f, v in list(CLIENT_FIELDS.items())[:5]])
    assert sorted(a.status_code for a in answers) == [200, 412, 412, 412, 412], [a.text for a in answers]
    assert all(a.json()["error"]["code"] == "version_conflict" for a in answers if a.status_code == 412)


def test_parallel_patches_of_a_contact_without_if_match_keep_every_field(live):
    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    contact = live.ok("POST", f"/v1/clients/{client['id']}/contacts", {"full_name": "Pat", "email": "pat@acme.test"},
                      status=201)
    path = f"/v1/clients/{client['id']}/contacts/{contact['id']}"
    fields = {"phone": "+31 1", "mobile": "+31 6", "job_title": "Producer", "position": "Lead",
              "department": "Ops", "notes": "Prefers mornings", "is_billing_contact": True,
              "is_technical_contact": True}
    with stream_rescoring(client["id"]):
        answers = parallel([lambda f=f, v=v: live.call("PATCH", path, {f: v}) for f, v in fields.items()])
    assert [a.status_code for a in answers] == [200] * len(fields), [a.text for a in answers if a.status_code != 200]
    stored = live.ok("GET", path)
    assert {f: stored[f] for f in fields} == fields
    assert stored["version"] == contact["version"] + len(fields)


def test_parallel_invoice_puts_racing_the_streams_rescore_never_answer_412(live):
    from chalicelib.handlers.stream import EFFECTS
    from chalicelib.tables.stores import Stores

    client = live.ok("POST", "/v1/clients", {"name": "Acme"}, status=201)
    amounts = [f"{1000 + n}.00" for n in range(8)]
    with stream_rescoring(client["id"]):
        answers = parallel([lambda a=a: live.call("PUT", "/v1/integrations/invoices/inv-1", {
            "client_id": client["id"], "kind": "invoice", "amount": a, "status": "open"}) for a in amounts])
    codes = [a.status_code for a in answers]
    assert sorted(codes) == [200] * 7 + [201], [a.text for a in answers if a.status_code not in (200, 201)]
    stored = live.ok("GET", "/v1/integrations/invoices/inv-1")
    assert stored["amount"] in amounts
    EFFECTS["rescore"](Stores("t1"), client["id"])
    assert live.ok("GET", f"/v1/clients/{client['id']}")["outstanding_balance"] == stored["amount"]


def test_parallel_patches_of_settings_keep_every_field(live):
    portal = {"enabled": True, "show_communications": False, "show_invoices": False, "allow_quote_approval": False}
    client = {"default_currency": "USD", "default_payment_terms_days": 45, "default_tax_rate": "21.00",
              "sending_address": "office@acme.test"}
    answers = parallel([lambda f=f, v=v: live.call("PATCH", "/v1/settings/portal", {f: v}) for f, v in portal.items()]
                       + [lambda f=f, v=v: live.call("PATCH", "/v1/settings/client", {f: v})
                          for f, v in client.items()])
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers if a.status_code != 200]
    assert live.ok("GET", "/v1/settings/portal") == portal
    stored = live.ok("GET", "/v1/settings/client")
    assert {f: stored[f] for f in client} == client


def test_parallel_patches_of_a_category_and_a_segment_all_land(live):
    category = live.ok("POST", "/v1/categories", {"name": "Venues"}, status=201)
    segment = live.ok("POST", "/v1/segments", {"name": "Hand-picked", "type": "static"}, status=201)
    changes = {"description": "Where events happen", "color": "#112233", "icon": "mdi-home", "is_public": False}
    answers = parallel([lambda f=f, v=v: live.call("PATCH", f"/v1/categories/{category['id']}", {f: v})
                        for f, v in {**changes, "sort_order": 7}.items()]
                       + [lambda f=f, v=v: live.call("PATCH", f"/v1/segments/{segment['id']}", {f: v})
                          for f, v in changes.items()])
    assert [a.status_code for a in answers] == [200] * 9, [a.text for a in answers if a.status_code != 200]
    stored = live.ok("GET", f"/v1/categories/{category['id']}")
    assert {f: stored[f] for f in changes} == changes and stored["sort_order"] == 7
    stored = live.ok("GET", f"/v1/segments/{segment['id']}")
    assert {f: stored[f] for f in changes} == changes


def test_a_deleted_node_contact_frees_its_node_user_for_a_new_contact(live):
    client_id = linked_client(live)
    live.ok("POST", f"/v1/clients/{client_id}/contacts", {"full_name": "Pat", "email": "pat@acme.test"}, status=201)
    assert webhook(live, "w-1", "user.upserted", {"node_client_id": "n-1", "user": USER}).ok
    first = next(c for c in contacts(live, client_id) if c["node_user_id"] == "u-1")
    assert live.call("DELETE", f"/v1/clients/{client_id}/contacts/{first['id']}").status_code == 204
    later = {**USER, "updated_at": "2026-11-02T10:00:00Z"}
    answer = webhook(live, "w-2", "user.upserted", {"node_client_id": "n-1", "user": later})
    assert (answer.status_code, answer.json()) == (200, {"status": "processed"})
    synced = [c for c in contacts(live, client_id) if c["node_user_id"] == "u-1"]
    assert len(synced) == 1 and synced[0]["id"] != first["id"]
