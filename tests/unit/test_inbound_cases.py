"""Inbound mail's use cases on FakeStores: routing by recipient, sender matching, duplicates, assigning."""
from __future__ import annotations

import pytest

from chalicelib.domain import inbound_cases
from chalicelib.domain.communications import ContactRef
from chalicelib.domain.errors import NotFound
from chalicelib.domain.inbound_cases import ByRecipient, Destination
from tests.fakes import FakeDirectory, FakeMailbox, FakeStores, client

RAW = ("From: Jane Doe <jane@acme.test>\r\nTo: office@in.test\r\nCc: acme@in.test\r\nSubject: Quote\r\n"
       "Message-ID: <m1@acme.test>\r\nDate: Mon, 02 Mar 2026 10:30:00 +0000\r\n\r\nYes please.\r\n")


def tenant(senders: dict[str, list[ContactRef]] | None = None) -> FakeStores:
    """Tenant t1 with the clients c1 and c2 (and the contacts of these sender addresses)."""
    return FakeStores(client("c1", "Acme"), client("c2", "Beta"), senders=senders)


def _route(stores: FakeStores, addresses: dict[str, str]) -> ByRecipient:
    return ByRecipient(FakeDirectory(addresses), lambda tenant_id: stores)


def test_the_first_recipient_a_tenant_receives_for_routes_the_email_and_its_newest_contact_takes_it():
    stores = tenant(senders={"jane@acme.test": [ContactRef(client_id="c1", contact_id="01A"),
                                                 ContactRef(client_id="c2", contact_id="01B")]})
    received = inbound_cases.receive(FakeMailbox({("b", "k"): RAW.encode()}), "b", "k",
                                     _route(stores, {"acme@in.test": "t1"}))
    assert received.status == "logged"
    comm = received.communication
    assert (comm.client_id, comm.client_contact_id, comm.to_email) == ("c2", "01B", "acme@in.test")
    assert comm.direction == "inbound" and comm.status == "delivered" and comm.thread_id
    assert stores.inbox.find_message("<m1@acme.test>").communication_id == comm.id


def test_mail_no_tenant_receives_is_rejected_and_nothing_is_stored():
    stores = tenant()
    received = inbound_cases.receive(FakeMailbox({("b", "k"): RAW.encode()}), "b", "k", _route(stores, {}))
    assert (received.status, received.reason) == ("rejected", "unknown recipient")
    assert stores.communications.rows == {} and stores.inbox.kept == {}
    assert stores.committed == []


def test_a_sender_no_contact_has_is_kept_unmatched_with_where_it_is_stored():
    stores = tenant()
    received = inbound_cases.receive(FakeMailbox({("b", "k"): RAW.encode()}), "b", "k",
                                     _route(stores, {"office@in.test": "t1"}))
    assert received.status == "unmatched"
    kept = stores.inbox.kept[received.unmatched_id]
    assert (kept.from_email, kept.to_email, kept.subject, kept.bucket, kept.key) == (
        "jane@acme.test", "office@in.test", "Quote", "b", "k")
    assert kept.body_preview == "Yes please."
    assert stores.committed == [("inbox.add_unmatched", kept)]


def test_the_same_message_received_twice_is_logged_once():
    stores = tenant(senders={"jane@acme.test": [ContactRef(client_id="c1", contact_id="01A")]})
    mailbox, route = FakeMailbox({("b", "k"): RAW.encode()}), _route(stores, {"office@in.test": "t1"})
    assert inbound_cases.receive(mailbox, "b", "k", route).status == "logged"
    stores.committed.clear()
    again = inbound_cases.receive(mailbox, "b", "k", route)
    assert (again.status, again.communication) == ("duplicate", None)
    assert len(stores.communications.rows) == 1
    assert stores.committed == []


def test_assigning_logs_the_stored_email_on_the_chosen_client_and_drops_it_from_the_unmatched():
    stores = tenant()
    mailbox = FakeMailbox({("b", "k"): RAW.encode()})
    kept = inbound_cases.receive(mailbox, "b", "k", _route(stores, {"office@in.test": "t1"}))
    comm = inbound_cases.assign_unmatched(stores, mailbox, kept.unmatched_id, "c2")
    assert (comm.client_id, comm.client_contact_id, comm.to_email) == ("c2", None, "office@in.test")
    assert stores.inbox.kept == {}
    # dropped from the unmatched only once logged
    assert [method for method, _ in stores.committed][-2:] == ["communications.add", "inbox.remove_unmatched"]


def test_assigning_a_message_logged_meanwhile_answers_that_communication():
    stores = tenant()
    mailbox = FakeMailbox({("b", "k"): RAW.encode()})
    kept = inbound_cases.receive(mailbox, "b", "k", _route(stores, {"office@in.test": "t1"}))
    first = inbound_cases.receive(mailbox, "b", "k", lambda parsed: Destination(stores, "office@in.test", "c1"))
    assert inbound_cases.assign_unmatched(stores, mailbox, kept.unmatched_id, "c2").id == first.communication.id
    assert stores.inbox.kept == {}


def test_assigning_to_an_unknown_client_changes_nothing():
    stores = tenant()
    mailbox = FakeMailbox({("b", "k"): RAW.encode()})
    kept = inbound_cases.receive(mailbox, "b", "k", _route(stores, {"office@in.test": "t1"}))
    stores.committed.clear()
    with pytest.raises(NotFound):
        inbound_cases.assign_unmatched(stores, mailbox, kept.unmatched_id, "c9")
    assert list(stores.inbox.kept) == [kept.unmatched_id] and stores.communications.rows == {}
    assert stores.committed == []
