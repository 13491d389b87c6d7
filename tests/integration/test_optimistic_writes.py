"""Optimistic writes on DynamoDB Local: a write made over a stale read is refused, then retried, never lost."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.domain import category_cases, client_cases, integration_cases, segment_cases
from chalicelib.domain.errors import VersionConflict
from chalicelib.domain.values import utcnow

pytestmark = pytest.mark.ddb


@pytest.fixture
def stores(ddb_table: str):
    from chalicelib.tables.stores import Stores

    return Stores("t1")


def test_a_category_written_over_a_stale_snapshot_never_puts_back_an_older_count(stores):
    created, _ = category_cases.create_category(stores, {"name": "Venues"})
    categories, version = stores.categories.snapshot()
    stale = next(c for c in categories if c.id == created.id)
    stores.categories.set_clients_count(created.id, 2)  # the stream's recount, after the snapshot was read
    with pytest.raises(VersionConflict):
        stores.categories.save(stale.model_copy(update={"description": "Where events happen"}), version)
    category_cases.update_category(stores, created.id, {"description": "Where events happen"})
    stored = stores.categories.get(created.id)
    assert (stored.description, stored.clients_count) == ("Where events happen", 2)


def test_a_segment_written_over_a_stale_read_never_puts_back_older_figures(stores):
    segment = segment_cases.create_segment(stores, {"name": "Hand-picked", "type": "static"}, actor=None)
    stale = stores.segments.get(segment.id)
    stores.segments.set_client_count(segment.id, 3)  # the stream's recount, after the segment was read
    with pytest.raises(VersionConflict):
        stores.segments.save(stale, stale.model_copy(update={"description": "VIPs"}))
    segment_cases.update_segment(stores, segment.id, {"description": "VIPs"})
    stored = stores.segments.get(segment.id)
    assert (stored.description, stored.client_count) == ("VIPs", 3)


def test_an_invoice_put_that_read_before_a_portal_approval_never_takes_it_back(stores):
    from chalicelib.tables.portal import PortalRepository

    client = client_cases.create_client(stores, {"name": "Acme"})
    quote = {"client_id": client.id, "kind": "quote", "amount": "500.00", "status": "open"}
    integration_cases.upsert_invoice(stores, "q-1", quote)
    read = stores.facts.invoice("q-1")
    now = utcnow()
    PortalRepository("t1").approve(read.model_copy(update={"status": "approved", "approved_at": now,
                                                           "approved_by": "contact-1", "updated_at": now}))
    with pytest.raises(VersionConflict):  # the PUT decided on the open quote it read
        stores.facts.save_invoice(read, read.model_copy(update={"amount": "600.00", "updated_at": utcnow()}))
    stored, created = integration_cases.upsert_invoice(stores, "q-1", {**quote, "amount": "600.00"})
    assert not created and (stored.status, str(stored.amount), stored.approved_by) == ("approved", "600.00",
                                                                                       "contact-1")


class _Http:
    status_code = 400
    headers: dict = {}


@pytest.fixture
def transaction_conflicts(ddb_api) -> Iterator[list[int]]:
    """Make the next `n[0]` TransactWriteItems calls fail with TransactionConflict, as DynamoDB does when another
    transaction holds an item (DynamoDB Local never does); yields the counter."""
    from chalicelib.tables.base import TableItem, configure

    configure()
    events = TableItem._get_connection().connection.client.meta.events
    left = [0]

    def conflict(**_: object):
        if left[0] <= 0:
            return None
        left[0] -= 1
        return _Http(), {"Error": {"Code": "TransactionCanceledException",
                                   "Message": "Transaction cancelled [TransactionConflict]"},
                         "CancellationReasons": [{"Code": "TransactionConflict",
                                                  "Message": "Transaction is ongoing for the item"}]}

    events.register("before-call.dynamodb.TransactWriteItems", conflict, unique_id="test-transaction-conflict")
    try:
        yield left
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="test-transaction-conflict")


def test_transaction_conflicts_are_retried_until_the_write_lands(ddb_api, transaction_conflicts):
    client = ddb_api.post("/v1/clients", {"name": "Acme"}).data
    transaction_conflicts[0] = 12  # more than the 8 tries of the loop this replaced
    answer = ddb_api.patch(f"/v1/clients/{client['id']}", {"phone": "+31 20 555 0100"})
    assert answer.status_code == 200, answer.data
    assert transaction_conflicts[0] == 0
    assert ddb_api.get(f"/v1/clients/{client['id']}").data["phone"] == "+31 20 555 0100"
    transaction_conflicts[0] = 12
    contact = ddb_api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Pat", "email": "pat@acme.test"})
    assert contact.status_code == 201, contact.data
