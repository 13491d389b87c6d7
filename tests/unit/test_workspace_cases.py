"""Task, association and static-segment use cases on in-memory fakes that record what was written."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import association_cases, segment_cases, task_cases
from chalicelib.domain.associations import Association
from chalicelib.domain.clients import Client, new_client
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.segments import MemberEntry, Segment
from chalicelib.domain.settings import ClientSettings
from chalicelib.domain.tasks import Task

NOW = datetime(2025, 3, 4, 13, 45, 1, 123000, tzinfo=UTC)


def client(client_id: str, name: str, kind: str = "company", archived: bool = False) -> Client:
    made = new_client({"name": name, "type": kind}, tenant_id="t1", client_id=client_id, settings=ClientSettings(),
                      custom_fields=[], actor="user-1", now=NOW)
    return made.model_copy(update={"status": "archived", "archived_at": NOW}) if archived else made


class FakeClients:
    def __init__(self, *clients: Client):
        self.rows = {c.id: c for c in clients}

    def get(self, client_id):
        if client_id not in self.rows:
            raise NotFound(f"client {client_id} not found")
        return self.rows[client_id]

    def get_many(self, client_ids, consistent=False):
        return {cid: self.rows[cid] for cid in client_ids if cid in self.rows}


class FakeTasks:
    def __init__(self):
        self.rows: dict[tuple[str, str], Task] = {}
        self.updates: list[tuple[Task, Task]] = []

    def add(self, task):
        self.rows[(task.client_id, task.id)] = task
        return task

    def get(self, client_id, task_id):
        if (client_id, task_id) not in self.rows:
            raise NotFound(f"task {task_id} not found")
        return self.rows[(client_id, task_id)]

    def of_client(self, client_id):
        return [t for (cid, _), t in self.rows.items() if cid == client_id]

    def update(self, old, new):
        self.updates.append((old, new))
        self.rows[(new.client_id, new.id)] = new
        return new


class FakeAssociations:
    def __init__(self):
        self.rows: dict[tuple[str, str], Association] = {}
        self.committed: list[tuple[Association, Association]] = []

    def get(self, client_id, related_id):
        return self.rows.get((client_id, related_id))

    def of_client(self, client_id):
        return [a for (cid, _), a in self.rows.items() if cid == client_id]

    def put_both(self, side, other):
        self.committed.append((side, other))
        for a in (side, other):
            self.rows[(a.client_id, a.related_id)] = a

    def delete_both(self, client_id, related_id):
        if (client_id, related_id) not in self.rows:
            raise NotFound(f"client {client_id} is not linked to {related_id}")
        del self.rows[(client_id, related_id)]
        self.rows.pop((related_id, client_id), None)


class FakeSegments:
    def __init__(self, *segments: Segment):
        self.rows = {s.id: s for s in segments}
        self.members: dict[str, dict[str, MemberEntry]] = {s.id: {} for s in segments}
        self.counts: dict[str, int] = {}

    def get(self, segment_id):
        if segment_id not in self.rows:
            raise NotFound(f"segment {segment_id} not found")
        return self.rows[segment_id]

    def add_member_once(self, segment_id, client, by, method, at):
        if client.id in self.members[segment_id]:
            return False
        self.members[segment_id][client.id] = MemberEntry(client_id=client.id, added_at=at, added_by=by,
                                                          added_method=method)
        return True

    def member(self, segment_id, client_id):
        return self.members[segment_id].get(client_id)

    def remove_members(self, segment_id, client_ids):
        for client_id in client_ids:
            self.members[segment_id].pop(client_id, None)

    def count_members(self, segment_id):
        return len(self.members[segment_id])

    def set_client_count(self, segment_id, count):
        self.counts[segment_id] = count


class FakeStores:
    def __init__(self, *clients: Client, segments: FakeSegments | None = None):
        self.tenant_id, self.actor = "t1", "user-1"
        self.clients = FakeClients(*clients)
        self.tasks = FakeTasks()
        self.associations = FakeAssociations()
        self.segments = segments or FakeSegments()


# --- tasks -------------------------------------------------------------------------------------------------------

def test_a_task_created_done_is_stamped_completed():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back", "status": "done"}, actor="user-1", now=NOW)
    assert (task.status, task.completed_at, task.created_by) == ("done", NOW, "user-1")
    assert stores.tasks.of_client("C1") == [task]


def test_a_task_of_an_unknown_client_is_not_created():
    stores = FakeStores()
    with pytest.raises(NotFound):
        task_cases.create_task(stores, "C404", {"title": "Call back"}, actor=None)
    assert stores.tasks.rows == {}


def test_an_update_changing_nothing_writes_nothing():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back"}, actor=None, now=NOW)
    assert task_cases.update_task(stores, "C1", task.id, {"title": "Call back"}, now=NOW + timedelta(hours=1)) == task
    assert stores.tasks.updates == []


def test_closing_a_task_stamps_completed_at_and_the_actor():
    stores = FakeStores(client("C1", "Acme"))
    task = task_cases.create_task(stores, "C1", {"title": "Call back"}, actor=None, now=NOW)
    later = NOW + timedelta(hours=1)
    done = task_cases.update_task(stores, "C1", task.id, {"status": "done"}, actor="user-2", now=later)
    assert (done.completed_at, done.updated_at, done.updated_by) == (later, later, "user-2")
    [(old, new)] = stores.tasks.updates
    assert old == task and new == done


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
    [(side, other)] = stores.associations.committed
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
    assert stores.associations.committed == []


def test_links_list_by_the_related_clients_current_name():
    stores = FakeStores(client("V1", "Venue", "venue"), client("C1", "zeta"), client("C2", "Alpha"))
    association_cases.link(stores, "V1", "C1", None, actor=None)
    association_cases.link(stores, "V1", "C2", None, actor=None)
    stores.clients.rows["C1"] = stores.clients.rows["C1"].model_copy(update={"name": "Beta"})
    assert [(v.related_id, v.related_name) for v in association_cases.links_of(stores, "V1")] == \
        [("C2", "Alpha"), ("C1", "Beta")]


def test_unlinking_clients_that_are_not_linked_is_not_found():
    stores = FakeStores(client("C1", "Acme"), client("P1", "Ann", "individual"))
    with pytest.raises(NotFound):
        association_cases.unlink(stores, "C1", "P1")


# --- static segment members --------------------------------------------------------------------------------------

def segment(segment_id: str, kind: str = "static") -> Segment:
    return Segment(id=segment_id, tenant_id="t1", name=f"Segment {segment_id}", slug=segment_id.lower(), type=kind,
                   criteria=None if kind == "static" else {"match": "all", "conditions": []},
                   created_at=NOW, updated_at=NOW)


def test_adding_a_member_twice_adds_it_once_and_recounts_once():
    stores = FakeStores(client("C1", "Acme"), segments=FakeSegments(segment("S1")))
    member, added = segment_cases.add_member(stores, "S1", "C1", actor="user-1")
    again, added_again = segment_cases.add_member(stores, "S1", "C1", actor="user-2")
    assert (added, added_again) == (True, False)
    assert member == again and (member.name, member.added_by, member.added_method) == ("Acme", "user-1", "manual")
    assert stores.segments.counts == {"S1": 1}


@pytest.mark.parametrize(("kind", "archived", "error"), [("dynamic", False, Conflict), ("static", True,
                                                                                          ValidationFailed)])
def test_members_are_added_by_hand_only_to_static_segments_and_never_archived(kind, archived, error):
    stores = FakeStores(client("C1", "Acme", archived=archived), segments=FakeSegments(segment("S1", kind)))
    with pytest.raises(error):
        segment_cases.add_member(stores, "S1", "C1", actor=None)
    assert stores.segments.members["S1"] == {}


def test_removing_a_client_that_is_no_member_is_not_found():
    stores = FakeStores(client("C1", "Acme"), segments=FakeSegments(segment("S1")))
    with pytest.raises(NotFound):
        segment_cases.remove_member(stores, "S1", "C1")


def test_only_an_admin_creates_a_system_segment():
    with pytest.raises(Forbidden):
        segment_cases.create_segment(FakeStores(), {"name": "VIP", "type": "static", "is_system": True}, actor=None)
