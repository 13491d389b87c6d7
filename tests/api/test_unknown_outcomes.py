"""Lost answers and lapsed claims through the real app on moto: a 503 tells what may have been written, a retry
with the same Idempotency-Key never creates a second client, and a claim left pending frees itself."""
from __future__ import annotations

import logging

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from chalicelib.tables.errors import NOTHING_WRITTEN, OUTCOME_UNKNOWN
from chalicelib.tables.idempotency import IdempotencyStore
from tests.db_faults import failing

ACME = {"name": "Acme"}


def clients(api) -> list[str]:
    return [c["name"] for c in api.get("/v1/clients").data["items"]]


def test_a_create_whose_transaction_landed_but_lost_its_answer_is_unknown_and_never_created_twice(api):
    key = {"Idempotency-Key": "lost-after"}
    with failing({"TransactWriteItems": [ReadTimeoutError]}, after_the_database=True) as seen:
        first = api.post("/v1/clients", ACME, headers=key)
    assert seen["TransactWriteItems"] == 2  # botocore retried the lost answer once (its budget allows two)
    assert first.status_code == 503
    assert first.data["error"] == {**first.data["error"], "code": "unavailable", "message": OUTCOME_UNKNOWN}
    assert clients(api) == ["Acme"]  # it did land

    again = api.post("/v1/clients", ACME, headers=key)
    assert again.status_code == 409
    assert again.data["error"]["code"] == "idempotency_answer_lost"
    assert clients(api) == ["Acme"]


def test_a_create_whose_request_was_lost_on_the_way_is_unknown_and_its_retry_creates_it_once(api):
    key = {"Idempotency-Key": "lost-before"}
    with failing({"TransactWriteItems": [ReadTimeoutError]}):
        first = api.post("/v1/clients", ACME, headers=key)
    assert (first.status_code, first.data["error"]["message"]) == (503, OUTCOME_UNKNOWN)
    assert clients(api) == []

    again = api.post("/v1/clients", ACME, headers=key)
    assert again.status_code == 201
    assert api.post("/v1/clients", ACME, headers=key).headers.get("Idempotent-Replayed") == "true"
    assert clients(api) == ["Acme"]


def test_a_write_that_never_connected_says_nothing_was_written(api):
    with failing({"TransactWriteItems": [EndpointConnectionError]}):
        first = api.post("/v1/clients", ACME, headers={"Idempotency-Key": "refused"})
    assert (first.status_code, first.data["error"]["message"]) == (503, NOTHING_WRITTEN)
    assert api.post("/v1/clients", ACME, headers={"Idempotency-Key": "refused"}).status_code == 201


def test_a_write_whose_first_attempt_was_lost_stays_unknown_when_the_retry_cannot_connect(api):
    with failing({"TransactWriteItems": [ReadTimeoutError, EndpointConnectionError]}) as seen:
        first = api.post("/v1/clients", ACME)
    assert seen["TransactWriteItems"] == 2
    assert (first.status_code, first.data["error"]["message"]) == (503, OUTCOME_UNKNOWN)


def test_a_claim_left_pending_blocks_retries_within_its_lease_then_lets_one_run(api, monkeypatch, caplog):
    now = [1_800_000_000.0]
    monkeypatch.setattr(IdempotencyStore, "clock", staticmethod(lambda: now[0]))
    key = {"Idempotency-Key": "stuck"}
    # The create cannot connect, nor can the release of its key: the key stays pending.
    with caplog.at_level(logging.ERROR), failing({op: [EndpointConnectionError] for op in
                                                  ("TransactWriteItems", "DeleteItem", "UpdateItem")}) as seen:
        first = api.post("/v1/clients", ACME, headers=key)
    assert seen["DeleteItem"] > 0  # the release was tried...
    assert (first.status_code, first.data["error"]["message"]) == (503, NOTHING_WRITTEN)  # ...without masking
    assert "not released" in caplog.text

    now[0] += 30  # FUNCTION_TIMEOUT is 30 s: the lease (30 s + margin) still holds
    blocked = api.post("/v1/clients", ACME, headers=key)
    assert (blocked.status_code, blocked.data["error"]["code"]) == (409, "idempotency_in_progress")
    assert blocked.headers["Retry-After"] == "5"  # when the lease lapses

    now[0] += 10  # past the lease: the request that held it is gone
    assert api.post("/v1/clients", ACME, headers=key).status_code == 201
    assert api.post("/v1/clients", ACME, headers=key).headers.get("Idempotent-Replayed") == "true"
    assert clients(api) == ["Acme"]


def test_a_lapsed_claim_still_refuses_another_request_under_the_same_key(api, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(IdempotencyStore, "clock", staticmethod(lambda: now[0]))
    key = {"Idempotency-Key": "stuck-2"}
    with failing({op: [EndpointConnectionError] for op in ("TransactWriteItems", "DeleteItem", "UpdateItem")}):
        api.post("/v1/clients", ACME, headers=key)
    now[0] += 3600
    reused = api.post("/v1/clients", {"name": "Other"}, headers=key)
    assert (reused.status_code, reused.data["error"]["code"]) == (409, "idempotency_key_reused")


def test_a_claim_that_landed_though_its_answer_was_lost_still_belongs_to_its_request(api):
    # botocore sends the claim again; the conditional put then fails on the claim it wrote itself.
    with failing({"PutItem": [ReadTimeoutError, None]}, after_the_database=True) as seen:
        created = api.post("/v1/clients", ACME, headers={"Idempotency-Key": "claim-lost"})
    assert seen["PutItem"] >= 2
    assert created.status_code == 201
    assert clients(api) == ["Acme"]


def test_a_key_serves_another_request_once_its_24_hours_are_over(api, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(IdempotencyStore, "clock", staticmethod(lambda: now[0]))
    key = {"Idempotency-Key": "a-day"}
    assert api.post("/v1/clients", ACME, headers=key).status_code == 201
    now[0] += 24 * 3600 + 1
    assert api.post("/v1/clients", {"name": "Other"}, headers=key).status_code == 201
    assert sorted(clients(api)) == ["Acme", "Other"]
