"""Inbound mail's use cases on in-memory stores: routing by recipient, sender matching, duplicates, assigning."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chalicelib.domain import inbound_cases
from chalicelib.domain.communications import Communication, ContactRef, KnownMessage, UnmatchedEmail
from chalicelib.domain.errors import NotFound
from chalicelib.domain.inbound_cases import ByRecipient, Destination
from chalicelib.domain.threads import Thread

RAW = ("From: Jane Doe <jane@acme.test>\r\nTo: office@in.test\r\nCc: acme@in.test\r\nSubject: Quote\r\n"
       "Message-ID: <m1@acme.test>\r\nDate: Mon, 02 Mar 2026 10:30:00 +0000\r\n\r\nYes please.\r\n")


class FakeInbox:
    def __init__(self, contacts: list[ContactRef] | None = None):
        self.contacts = contacts or []
        self.messages: dict[str, KnownMessage] = {}
        self.kept: dict[str, UnmatchedEmail] = {}

    def contacts_with_email(self, email):
        return list(self.contacts)

    def remember_message_id(self, message_id, client_id, communication_id):
        if message_id in self.messages:
            return False
        self.messages[message_id] = KnownMessage(client_id=client_id, communication_id=communication_id)
        return True

    def find_message(self, message_id):
        return self.messages.get(message_id)

    def add_unmatched(self, email):
        self.kept[email.id] = email

    def get_unmatched(self, item_id):
        if item_id not in self.kept:
            raise NotFound("no such email")
        return self.kept[item_id]

    def remove_unmatched(self, item_id):
        del self.kept[item_id]


class FakeCommunications:
    def __init__(self):
        self.rows: dict[str, Communication] = {}

    def add(self, comm):
        self.rows[comm.id] = comm
        return comm

    def put(self, comm):
        self.rows[comm.id] = comm
        return comm

    def get(self, client_id, comm_id):
        comm = self.rows.get(comm_id)
        if comm is None or comm.client_id != client_id:
            raise NotFound("no such communication")
        return comm

    def of_client(self, client_id):
        return [c for c in self.rows.values() if c.client_id == client_id]


class FakeThreads:
    def __init__(self):
        self.rows: list[Thread] = []

    def add(self, thread):
        self.rows.append(thread)
        return thread

    def of_client(self, client_id):
        return [t for t in self.rows if t.client_id == client_id]


class FakeClients:
    def __init__(self, ids):
        self.ids = set(ids)

    def get(self, client_id):
        if client_id not in self.ids:
            raise NotFound("no such client")
        return client_id


@dataclass
class FakeStores:
    tenant_id: str = "t1"
    actor: str | None = None
    inbox: FakeInbox = field(default_factory=FakeInbox)
    communications: FakeCommunications = field(default_factory=FakeCommunications)
    threads: FakeThreads = field(default_factory=FakeThreads)
    clients: FakeClients = field(default_factory=lambda: FakeClients(["c1", "c2"]))


class FakeMailbox:
    def __init__(self, objects: dict[tuple[str, str], bytes]):
        self.objects = objects
        self.kept: list[str] = []

    def read(self, bucket, key):
        return self.objects[(bucket, key)]

    def keep_attachment(self, key, data, content_type):
        self.kept.append(key)
        return key


class FakeDirectory:
    def __init__(self, addresses: dict[str, str]):
        self.addresses = addresses

    def tenants(self, after=None):
        return iter(sorted(set(self.addresses.values())))

    def tenant_of_address(self, address):
        return self.addresses.get(address)


def _route(stores: FakeStores, addresses: dict[str, str]) -> ByRecipient:
    return ByRecipient(FakeDirectory(addresses), lambda tenant_id: stores)


def test_the_first_recipient_a_tenant_receives_for_routes_the_email_and_its_newest_contact_takes_it():
    stores = FakeStores(inbox=FakeInbox([ContactRef(client_id="c1", contact_id="01A"),
                                         ContactRef(client_id="c2", contact_id="01B")]))
    received = inbound_cases.receive(FakeMailbox({("b", "k"): RAW.encode()}), "b", "k",
                                     _route(stores, {"acme@in.test": "t1"}))
    assert received.status == "logged"
    comm = received.communication
    assert (comm.client_id, comm.client_contact_id, comm.to_email) == ("c2", "01B", "acme@in.test")
    assert comm.direction == "inbound" and comm.status == "delivered" and comm.thread_id
    assert stores.inbox.find_message("<m1@acme.test>").communication_id == comm.id


def test_mail_no_tenant_receives_is_rejected_and_nothing_is_stored():
    stores = FakeStores()
    received = inbound_cases.receive(FakeMailbox({("b", "k"): RAW.encode()}), "b", "k", _route(stores, {}))
    assert (received.status, received.reason) == ("rejected", "unknown recipient")
    assert stores.communications.rows == {} and stores.inbox.kept == {}


def test_a_sender_no_contact_has_is_kept_unmatched_with_where_it_is_stored():
    stores = FakeStores()
    received = inbound_cases.receive(FakeMailbox({("b", "k"): RAW.encode()}), "b", "k",
                                     _route(stores, {"office@in.test": "t1"}))
    assert received.status == "unmatched"
    kept = stores.inbox.kept[received.unmatched_id]
    assert (kept.from_email, kept.to_email, kept.subject, kept.bucket, kept.key) == (
        "jane@acme.test", "office@in.test", "Quote", "b", "k")
    assert kept.body_preview == "Yes please."


def test_the_same_message_received_twice_is_logged_once():
    stores = FakeStores(inbox=FakeInbox([ContactRef(client_id="c1", contact_id="01A")]))
    mailbox, route = FakeMailbox({("b", "k"): RAW.encode()}), _route(stores, {"office@in.test": "t1"})
    assert inbound_cases.receive(mailbox, "b", "k", route).status == "logged"
    again = inbound_cases.receive(mailbox, "b", "k", route)
    assert (again.status, again.communication) == ("duplicate", None)
    assert len(stores.communications.rows) == 1


def test_assigning_logs_the_stored_email_on_the_chosen_client_and_drops_it_from_the_unmatched():
    stores = FakeStores()
    mailbox = FakeMailbox({("b", "k"): RAW.encode()})
    kept = inbound_cases.receive(mailbox, "b", "k", _route(stores, {"office@in.test": "t1"}))
    comm = inbound_cases.assign_unmatched(stores, mailbox, kept.unmatched_id, "c2")
    assert (comm.client_id, comm.client_contact_id, comm.to_email) == ("c2", None, "office@in.test")
    assert stores.inbox.kept == {}


def test_assigning_a_message_logged_meanwhile_answers_that_communication():
    stores = FakeStores()
    mailbox = FakeMailbox({("b", "k"): RAW.encode()})
    kept = inbound_cases.receive(mailbox, "b", "k", _route(stores, {"office@in.test": "t1"}))
    first = inbound_cases.receive(mailbox, "b", "k", lambda parsed: Destination(stores, "office@in.test", "c1"))
    assert inbound_cases.assign_unmatched(stores, mailbox, kept.unmatched_id, "c2").id == first.communication.id
    assert stores.inbox.kept == {}


def test_assigning_to_an_unknown_client_changes_nothing():
    stores = FakeStores()
    mailbox = FakeMailbox({("b", "k"): RAW.encode()})
    kept = inbound_cases.receive(mailbox, "b", "k", _route(stores, {"office@in.test": "t1"}))
    with pytest.raises(NotFound):
        inbound_cases.assign_unmatched(stores, mailbox, kept.unmatched_id, "c9")
    assert list(stores.inbox.kept) == [kept.unmatched_id] and stores.communications.rows == {}
