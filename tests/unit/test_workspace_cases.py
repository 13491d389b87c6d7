"""Task, association and static-segment use cases on FakeStores, asserting what they committed."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain import association_cases, segment_cases, task_cases
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.segments import Segment
from tests.fakes import NOW, FakeStores, client

# --- tasks -------------------------------------------------------------------------------------------------------

def test_a_task_created_done_is_stamped_completed():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back", "status": "done"}, actor="user-1", now=NOW)
    assert (task.status, task.completed_at, task.created_by) == ("done", NOW, "user-1")
    assert stores.tasks.of_client("C1") == [task]
    assert stores.committed == [("tasks.add", task)]


def test_a_task_of_an_unknown_client_is_not_created():
    stores = FakeStores()
    with pytest.raises(NotFound):
        task_cases.create_task(stores, "C404", {"title": "Call back"}, actor=None)
    assert stores.tasks.rows == {}
    assert stores.committed == []


def test_an_update_changing_nothing_writes_nothing():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back"}, actor=None, now=NOW)
    stores.committed.clear()
    assert task_cases.update_task(stores, "C1", task.id, {"title": "Call back"}, now=NOW + timedelta(hours=1)) == task
    assert stores.committed == []


def test_closing_a_task_stamps_completed_at_and_the_actor():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back"}, actor=None, now=NOW)
    later = NOW + timedelta(hours=1)
    done = task_cases.update_task(stores, "C1", task.id, {"status": "done"}, actor="user-2", now=later)
    assert (done.completed_at, done.updated_at, done.updated_by) == (later, later, "user-2")
    [(old, new)] = stores.written("tasks.update")
    assert old == task and new == done


def test_reopening_a_done_task_clears_completed_at():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back", "status": "done"}, actor=None, now=NOW)
    later = NOW + timedelta(hours=1)
    reopened = task_cases.update_task(stores, "C1", task.id, {"status": "open"}, actor="user-2", now=later)
    assert (reopened.status, reopened.completed_at, reopened.updated_at) == ("open", None, later)
    assert stores.tasks.get("C1", task.id) == reopened


def test_updating_an_unknown_task_or_another_clients_task_is_not_found_and_writes_nothing():
    stores = FakeStores(client("C1", "Acme"), client("C2", "Beta"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back"}, actor=None, now=NOW)
    stores.committed.clear()
    for client_id, task_id in (("C1", "01UNKNOWN"), ("C2", task.id)):
        with pytest.raises(NotFound):
            task_cases.update_task(stores, client_id, task_id, {"status": "done"})
    assert stores.committed == []


def test_a_null_title_is_refused_and_nothing_is_written():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back"}, actor=None, now=NOW)
    stores.committed.clear()
    with pytest.raises(ValidationFailed) as raised:
        task_cases.update_task(stores, "C1", task.id, {"title": None})
    assert raised.value.details == [{"field": "title", "message": "may not be null"}]
    assert stores.committed == []


def test_tasks_list_open_ones_by_due_date_then_done_ones_and_filter_by_status():
    stores = FakeStores(client("C1", "Acme"))
    late = task_cases.create_task(stores, "C1", {"title": "b", "due_date": NOW.date() + timedelta(days=9)},
                                  actor=None, now=NOW)
    undated = task_cases.create_task(stores, "C1", {"title": "c"}, actor=None, now=NOW + timedelta(seconds=1))
    soon = task_cases.create_task(stores, "C1", {"title": "a", "due_date": NOW.date()}, actor=None,
                                  now=NOW + timedelta(seconds=2))
    done = task_cases.create_task(stores, "C1", {"title": "d", "status": "done"}, actor=None,
                                  now=NOW + timedelta(seconds=3))
    assert [t.id for t in task_cases.list_tasks(stores, "C1")] == [soon.id, late.id, undated.id, done.id]
    assert [t.id for t in task_cases.list_tasks(stores, "C1", "done")] == [done.id]


# --- associations ------------------------------------------------------------------------------------------------

def test_a_link_is_written_on_both_sides_in_one_commit():
    stores = FakeStores(client("C1", "Acme"), client("P1", "Ann", "individual"))
    view, created = association_cases.link(stores, "C1", "P1", "director", actor="user-1", now=NOW)
    assert created and (view.related_id, view.related_name, view.related_type, view.role) == \
        ("P1", "Ann", "individual", "director")
    [(method, (side, other))] = stores.committed
    assert method == "associations.put_both"
    assert (side.client_id, side.related_id, other.client_id, other.related_id) == ("C1", "P1", "P1", "C1")


def test_linking_again_sets_the_role_and_keeps_who_linked_first():
    stores = FakeStores(client("C1", "Acme"), client("P1", "Ann", "individual"))
    association_cases.link(stores, "C1", "P1", None, actor="user-1", now=NOW)
    view, created = association_cases.link(stores, "P1", "C1", "owner", actor="user-2", now=NOW + timedelta(days=1))
    assert not created and view.role == "owner"
    assert {(a.role, a.created_by, a.created_at) for a in stores.associations.rows.values()} == \
        {("owner", "user-1", NOW)}


@pytest.mark.parametrize(("related", "message"), [("C1", "itself"), ("C2", "cannot be linked"), ("X", "no such")])
def test_links_to_itself_between_two_companies_or_to_nobody_are_refused(related, message):
    stores = FakeStores(client("C1", "Acme"), client("C2", "Beta"))
    with pytest.raises(ValidationFailed) as raised:
        association_cases.link(stores, "C1", related, None, actor=None)
    assert raised.value.details[0]["field"] == "related_id" and message in raised.value.details[0]["message"]
    assert stores.committed == []


def test_links_list_by_the_related_clients_current_name():
    stores = FakeStores(client("V1", "Venue", "venue"), client("C1", "zeta"), client("C2", "Alpha"))
    association_cases.link(stores, "V1", "C1", None, actor=None)
    association_cases.link(stores, "V1", "C2", None, actor=None)
    stores.clients.rows["C1"] = stores.clients.rows["C1"].model_copy(update={"name": "Beta"})
    assert [(v.related_id, v.related_name) for v in association_cases.links_of(stores, "V1")] == \
        [("C2", "Alpha"), ("C1", "Beta")]


def test_links_to_a_client_that_is_gone_are_left_out_of_the_list():
    stores = FakeStores(client("V1", "Venue", "venue"), client("C1", "Acme"), client("C2", "Beta"))
    association_cases.link(stores, "V1", "C1", None, actor=None)
    association_cases.link(stores, "V1", "C2", None, actor=None)
    del stores.clients.rows["C1"]
    assert [v.related_id for v in association_cases.links_of(stores, "V1")] == ["C2"]


def test_unlinking_removes_the_link_from_both_sides():
    stores = FakeStores(client("C1", "Acme"), client("P1", "Ann", "individual"))
    association_cases.link(stores, "C1", "P1", None, actor=None)
    stores.committed.clear()
    association_cases.unlink(stores, "P1", "C1")
    assert stores.committed == [("associations.delete_both", ("P1", "C1"))]
    assert association_cases.links_of(stores, "C1") == [] and association_cases.links_of(stores, "P1") == []


def test_unlinking_clients_that_are_not_linked_is_not_found():
    stores = FakeStores(client("C1", "Acme"), client("P1", "Ann", "individual"))
    with pytest.raises(NotFound):
        association_cases.unlink(stores, "C1", "P1")
    assert stores.committed == []


# --- static segment members --------------------------------------------------------------------------------------

def segment(segment_id: str, kind: str = "static") -> Segment:
    return Segment(id=segment_id, tenant_id="t1", name=f"Segment {segment_id}", slug=segment_id.lower(), type=kind,
                   criteria=None if kind == "static" else {"match": "all", "conditions": []},
                   created_at=NOW, updated_at=NOW)


def test_adding_a_member_twice_adds_it_once_and_recounts_once():
    stores = FakeStores(client("C1", "Acme"), segments=[segment("S1")])
    member, added = segment_cases.add_member(stores, "S1", "C1", actor="user-1")
    again, added_again = segment_cases.add_member(stores, "S1", "C1", actor="user-2")
    assert (added, added_again) == (True, False)
    assert member == again and (member.name, member.added_by, member.added_method) == ("Acme", "user-1", "manual")
    assert stores.written("segments.set_client_count") == [("S1", 1)]
    assert stores.segments.get("S1").client_count == 1


@pytest.mark.parametrize(("kind", "archived", "error"), [("dynamic", False, Conflict), ("static", True,
                                                                                          ValidationFailed)])
def test_members_are_added_by_hand_only_to_static_segments_and_never_archived(kind, archived, error):
    stores = FakeStores(client("C1", "Acme", archived=archived), segments=[segment("S1", kind)])
    with pytest.raises(error):
        segment_cases.add_member(stores, "S1", "C1", actor=None)
    assert stores.segments.members["S1"] == {}
    assert stores.committed == []


def test_removing_a_client_that_is_no_member_is_not_found():
    stores = FakeStores(client("C1", "Acme"), segments=[segment("S1")])
    with pytest.raises(NotFound):
        segment_cases.remove_member(stores, "S1", "C1")
    assert stores.committed == []


def test_removing_a_member_removes_it_and_recounts():
    stores = FakeStores(client("C1", "Acme"), client("C2", "Beta"), segments=[segment("S1")])
    segment_cases.add_member(stores, "S1", "C1", actor=None)
    segment_cases.add_member(stores, "S1", "C2", actor=None)
    stores.committed.clear()
    segment_cases.remove_member(stores, "S1", "C1")
    assert stores.committed == [("segments.remove_members", ("S1", ["C1"])), ("segments.set_client_count", ("S1", 1))]
    assert list(stores.segments.members["S1"]) == ["C2"]


def test_only_an_admin_creates_a_system_segment():
    stores = FakeStores()
    with pytest.raises(Forbidden):
        segment_cases.create_segment(stores, {"name": "VIP", "type": "static", "is_system": True}, actor=None)
    assert stores.committed == []

