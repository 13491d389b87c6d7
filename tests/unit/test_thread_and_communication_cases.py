"""Thread and communication use cases on FakeStores: what they answer, and what they committed (or did not)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from ulid import ULID

from chalicelib.domain import communication_cases, thread_cases
from chalicelib.domain.communications import Communication
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.threads import Thread
from tests.fakes import NOW, FakeStores, client


def thread(thread_id: str, client_id: str = "C1", *, created_at: datetime = NOW,
           last_activity_at: datetime | None = None) -> Thread:
    return Thread(id=thread_id, tenant_id="t1", client_id=client_id, subject=f"Thread {thread_id}",
                  last_activity_at=last_activity_at, created_at=created_at, updated_at=created_at)


def message(at: datetime, client_id: str = "C1", *, thread_id: str | None = None, status: str = "sent",
            deleted: bool = False) -> Communication:
    return Communication.model_validate({
        "id": str(ULID.from_datetime(at)), "tenant_id": "t1", "client_id": client_id, "type": "email",
        "status": status, "subject": "Quote", "body": f"sent at {at}", "to_email": "ann@acme.test",
        "thread_id": thread_id, "occurred_at": at, "created_at": at, "updated_at": at,
        "deleted_at": at if deleted else None})


def never_send(**email: object) -> str:
    raise AssertionError(f"nothing is sent here: {email}")


# --- threads -----------------------------------------------------------------------------------------------------

def test_starting_a_thread_for_an_unknown_client_is_not_found_and_writes_nothing():
    stores = FakeStores(client("C1", "Acme"))
    with pytest.raises(NotFound):
        thread_cases.start_thread(stores, "C404", "Quote", "email", "Ann")
    assert stores.committed == []


def test_a_started_thread_is_the_actors_active_thread_with_no_messages_yet():
    stores = FakeStores(client("C1", "Acme"), actor="user-7")
    started = thread_cases.start_thread(stores, "C1", "Quote", "email", "Ann")
    assert stores.committed == [("threads.add", started)]
    assert (started.client_id, started.subject, started.type, started.status, started.messages_count) == \
        ("C1", "Quote", "email", "active", 0)
    assert (started.created_by, started.created_by_name) == ("user-7", "Ann")
    assert started.created_at == started.updated_at and started.last_activity_at is None


def test_renaming_a_thread_changes_its_subject_and_updated_at():
    stores = FakeStores(client("C1", "Acme"), threads=[thread("T1")])
    renamed = thread_cases.update_thread(stores, "C1", "T1", {"subject": "Quote, second draft"})
    assert (renamed.subject, renamed.status, renamed.created_at) == ("Quote, second draft", "active", NOW)
    assert renamed.updated_at > NOW
    assert stores.committed == [("threads.put", renamed)]


def test_archiving_a_thread_keeps_the_fields_sent_as_null():
    stores = FakeStores(client("C1", "Acme"), threads=[thread("T1")])
    archived = thread_cases.update_thread(stores, "C1", "T1", {"subject": None, "status": "archived"})
    assert (archived.subject, archived.status) == ("Thread T1", "archived") and archived.updated_at > NOW
    assert stores.threads.get("C1", "T1") == archived


def test_updating_a_thread_through_another_client_is_not_found_and_writes_nothing():
    stores = FakeStores(client("C1", "Acme"), client("C2", "Beta"), threads=[thread("T1", "C2")])
    with pytest.raises(NotFound):
        thread_cases.update_thread(stores, "C1", "T1", {"status": "archived"})
    assert stores.committed == []


def test_threads_list_latest_activity_first_and_a_thread_without_messages_by_its_creation():
    stores = FakeStores(client("C1", "Acme"), client("C2", "Beta"), threads=[
        thread("T1", last_activity_at=NOW + timedelta(hours=3)),
        thread("T2", created_at=NOW + timedelta(hours=1)),
        thread("T3", last_activity_at=NOW + timedelta(hours=2)),
        thread("T4", "C2", last_activity_at=NOW + timedelta(hours=9))])
    assert [t.id for t in thread_cases.list_threads(stores, "C1")] == ["T1", "T3", "T2"]


def test_listing_the_threads_of_an_unknown_client_is_not_found():
    with pytest.raises(NotFound):
        thread_cases.list_threads(FakeStores(threads=[thread("T1")]), "C1")


def test_a_thread_answers_with_its_live_messages_oldest_first():
    first, second = message(NOW, thread_id="T1"), message(NOW + timedelta(minutes=1), thread_id="T1")
    elsewhere = message(NOW + timedelta(minutes=2), thread_id="T2")
    deleted = message(NOW + timedelta(minutes=3), thread_id="T1", deleted=True)
    last = message(NOW + timedelta(minutes=4), thread_id="T1")
    stores = FakeStores(client("C1", "Acme"), threads=[thread("T1"), thread("T2")],
                        communications=[last, deleted, elsewhere, second, first])
    assert thread_cases.get_thread(stores, "C1", "T1") == (thread("T1"), [first, second, last])
    with pytest.raises(NotFound):
        thread_cases.get_thread(stores, "C1", "T9")


# --- communications ----------------------------------------------------------------------------------------------

def test_from_after_to_answers_an_empty_page_without_reading_communications():
    # FakeCommunications.page refuses such a range as DynamoDB does (StorageRefused): the use case must not ask.
    stores = FakeStores(client("C1", "Acme"), communications=[message(NOW)])
    filters = {"from": NOW + timedelta(days=1), "to": NOW - timedelta(days=1)}
    assert communication_cases.list_communications(stores, "C1", filters, 50, None) == ([], None)


def test_listing_the_communications_of_an_unknown_client_is_not_found_whatever_the_range():
    stores = FakeStores(communications=[message(NOW)])
    for filters in ({}, {"from": NOW + timedelta(days=1), "to": NOW}):
        with pytest.raises(NotFound):
            communication_cases.list_communications(stores, "C1", filters, 50, None)


def test_a_note_logged_on_the_clients_thread_is_stored_sent_when_it_occurred():
    stores = FakeStores(client("C1", "Acme"), threads=[thread("T1")])
    note = communication_cases.log_communication(
        stores, "C1", {"type": "note", "body": "Called, no answer", "thread_id": "T1", "occurred_at": NOW},
        actor="user-1", send=never_send)
    assert (note.direction, note.status, note.sent_at, note.thread_id, note.created_by) == \
        ("outbound", "sent", NOW, "T1", "user-1")
    assert stores.committed == [("communications.add", note)]


def test_a_communication_naming_another_clients_thread_is_refused_and_nothing_is_written():
    stores = FakeStores(client("C1", "Acme"), client("C2", "Beta"), threads=[thread("T1", "C2")])
    with pytest.raises(ValidationFailed) as raised:
        communication_cases.log_communication(stores, "C1", {"type": "note", "body": "Hi", "thread_id": "T1"},
                                              actor=None, send=never_send)
    assert raised.value.details == [{"field": "thread_id", "message": "is not a thread of this client"}]
    assert stores.committed == []


def test_a_deleted_communication_is_kept_marked_and_no_longer_found():
    kept = message(NOW)
    stores = FakeStores(client("C1", "Acme"), communications=[kept])
    communication_cases.delete_communication(stores, "C1", kept.id)
    [(method, written)] = stores.committed
    assert method == "communications.put" and written.id == kept.id and written.deleted_at is not None
    with pytest.raises(NotFound):
        communication_cases.get_communication(stores, "C1", kept.id)
    assert communication_cases.list_communications(stores, "C1", {}, 50, None) == ([], None)


def test_a_draft_email_is_sent_only_by_sending_it_not_by_an_edit():
    draft = message(NOW, status="draft")
    stores = FakeStores(client("C1", "Acme"), communications=[draft])
    with pytest.raises(Conflict) as raised:
        communication_cases.update_communication(stores, "C1", draft.id, {"status": "sent"})
    assert raised.value.code == "invalid_status"
    assert stores.committed == [] and stores.communications.get("C1", draft.id) == draft
