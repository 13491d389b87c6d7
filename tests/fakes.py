"""In-memory FakeStores for use-case tests: the repositories' promises without DynamoDB, and a log of every write."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain.associations import Association
from chalicelib.domain.clients import Client, new_client
from chalicelib.domain.communications import Communication, ContactRef, KnownMessage, UnmatchedEmail
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ports import Position
from chalicelib.domain.segments import MemberEntry, Segment
from chalicelib.domain.settings import ClientSettings
from chalicelib.domain.tasks import Task
from chalicelib.domain.threads import Thread
from chalicelib.domain.values import ulid_bound

if TYPE_CHECKING:
    from chalicelib.domain.ports import Stores

NOW = datetime(2025, 3, 4, 13, 45, 1, 123000, tzinfo=UTC)

# One write: the repository method and what it was given, e.g. ("tasks.add", task); several arguments as a tuple.
Write = tuple[str, Any]


class NotFaked(NotImplementedError):
    """A repository method no use-case test needed yet: fake it below, with the real repository's promise."""


class StorageRefused(Exception):
    """What the real repository answers with a storage error (a 500), not a domain error: a write whose condition
    fails (a `put` of a record that is not stored), a key range DynamoDB refuses."""


class _Fake:
    """A fake repository: writes go to the shared log; methods not written here raise NotFaked (mypy reads them
    as Any, so a fake passes as its port while every method it does fake is checked against the port)."""

    name = ""

    def __init__(self, log: list[Write]):
        self._log = log

    def _wrote(self, method: str, *args: Any) -> None:
        self._log.append((f"{self.name}.{method}", args[0] if len(args) == 1 else args))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotFaked(f"{type(self).__name__} ({self.name}) does not fake {name}: add it to tests/fakes.py")


class Unfaked(_Fake):
    """A repository no use-case test needs yet: every call raises NotFaked."""

    def __init__(self, log: list[Write], name: str):
        super().__init__(log)
        self.name = name


def client(client_id: str, name: str, kind: str = "company", archived: bool = False, now: datetime = NOW) -> Client:
    """A client of tenant t1 as a create makes it (archived when asked)."""
    made = new_client({"name": name, "type": kind}, tenant_id="t1", client_id=client_id, settings=ClientSettings(),
                      custom_fields=[], actor="user-1", now=now)
    return made.model_copy(update={"status": "archived", "archived_at": now}) if archived else made


class FakeClients(_Fake):
    name = "clients"

    def __init__(self, log: list[Write], clients: Iterable[Client]):
        super().__init__(log)
        self.rows = {c.id: c for c in clients}

    def get(self, client_id: str) -> Client:
        if client_id not in self.rows:
            raise NotFound(f"client {client_id} not found")
        return self.rows[client_id]

    def get_many(self, client_ids: list[str], consistent: bool = False) -> dict[str, Client]:
        return {cid: self.rows[cid] for cid in dict.fromkeys(client_ids) if cid in self.rows}


class FakeTasks(_Fake):
    name = "tasks"

    def __init__(self, log: list[Write]):
        super().__init__(log)
        self.rows: dict[tuple[str, str], Task] = {}

    def add(self, task: Task) -> Task:
        if (task.client_id, task.id) in self.rows:
            raise Conflict("conflict", "a task with this id exists")
        self.rows[(task.client_id, task.id)] = task
        self._wrote("add", task)
        return task

    def get(self, client_id: str, task_id: str) -> Task:
        if (client_id, task_id) not in self.rows:
            raise NotFound(f"task {task_id} not found")
        return self.rows[(client_id, task_id)]

    def of_client(self, client_id: str) -> list[Task]:
        return [t for (cid, _), t in sorted(self.rows.items()) if cid == client_id]

    def update(self, old: Task, new: Task) -> Task:
        if (new.client_id, new.id) not in self.rows:
            raise NotFound(f"task {new.id} not found")
        self.rows[(new.client_id, new.id)] = new
        self._wrote("update", old, new)
        return new


class FakeAssociations(_Fake):
    name = "associations"

    def __init__(self, log: list[Write]):
        super().__init__(log)
        self.rows: dict[tuple[str, str], Association] = {}

    def get(self, client_id: str, related_id: str) -> Association | None:
        return self.rows.get((client_id, related_id))

    def of_client(self, client_id: str) -> list[Association]:
        return [a for (cid, _), a in sorted(self.rows.items()) if cid == client_id]

    def put_both(self, side: Association, other: Association) -> None:
        for a in (side, other):
            self.rows[(a.client_id, a.related_id)] = a
        self._wrote("put_both", side, other)

    def delete_both(self, client_id: str, related_id: str) -> None:
        if (client_id, related_id) not in self.rows:
            raise NotFound(f"client {client_id} is not linked to {related_id}")
        del self.rows[(client_id, related_id)]
        self.rows.pop((related_id, client_id), None)
        self._wrote("delete_both", client_id, related_id)


class FakeSegments(_Fake):
    name = "segments"

    def __init__(self, log: list[Write], segments: Iterable[Segment]):
        super().__init__(log)
        self.rows = {s.id: s for s in segments}
        self.members: dict[str, dict[str, MemberEntry]] = {s: {} for s in self.rows}
        self.archived: set[tuple[str, str]] = set()  # (segment, client): entries of archived clients, not counted

    def get(self, segment_id: str) -> Segment:
        segment = self.rows.get(segment_id)
        if segment is None or segment.deleted_at is not None:
            raise NotFound(f"segment {segment_id} not found")
        return segment

    def add_member_once(self, segment_id: str, client: Client, by: str | None, method: str, at: datetime) -> bool:
        members = self.members.setdefault(segment_id, {})
        if client.id in members:
            return False
        members[client.id] = MemberEntry.model_validate({"client_id": client.id, "added_at": at, "added_by": by,
                                                         "added_method": method})
        if client.is_archived:
            self.archived.add((segment_id, client.id))
        self._wrote("add_member_once", segment_id, client, by, method, at)
        return True

    def member(self, segment_id: str, client_id: str) -> MemberEntry | None:
        return self.members.get(segment_id, {}).get(client_id)

    def remove_members(self, segment_id: str, client_ids: list[str]) -> None:
        for client_id in client_ids:
            self.members.get(segment_id, {}).pop(client_id, None)
            self.archived.discard((segment_id, client_id))
        self._wrote("remove_members", segment_id, client_ids)

    def count_members(self, segment_id: str) -> int:
        return sum((segment_id, cid) not in self.archived for cid in self.members.get(segment_id, {}))

    def set_client_count(self, segment_id: str, count: int) -> None:
        segment = self.rows.get(segment_id)
        if segment is None or segment.deleted_at is not None:  # a deleted segment keeps its last figures
            return
        self.rows[segment_id] = segment.model_copy(update={"client_count": count})
        self._wrote("set_client_count", segment_id, count)


class FakeInbox(_Fake):
    name = "inbox"

    def __init__(self, log: list[Write], senders: dict[str, list[ContactRef]]):
        super().__init__(log)
        self.senders = {email.casefold(): list(refs) for email, refs in senders.items()}
        self.messages: dict[str, KnownMessage] = {}
        self.kept: dict[str, UnmatchedEmail] = {}

    def contacts_with_email(self, email: str) -> list[ContactRef]:
        return list(self.senders.get(email.casefold(), []))

    def remember_message_id(self, message_id: str, client_id: str, communication_id: str) -> bool:
        if message_id in self.messages:
            return False
        self.messages[message_id] = KnownMessage(client_id=client_id, communication_id=communication_id)
        self._wrote("remember_message_id", message_id, client_id, communication_id)
        return True

    def find_message(self, message_id: str) -> KnownMessage | None:
        return self.messages.get(message_id)

    def add_unmatched(self, email: UnmatchedEmail) -> None:
        self.kept[email.id] = email
        self._wrote("add_unmatched", email)

    def get_unmatched(self, item_id: str) -> UnmatchedEmail:
        if item_id not in self.kept:
            raise NotFound(f"unmatched email {item_id} not found")
        return self.kept[item_id]

    def remove_unmatched(self, item_id: str) -> None:
        self.kept.pop(item_id, None)
        self._wrote("remove_unmatched", item_id)


class FakeCommunications(_Fake):
    name = "communications"

    def __init__(self, log: list[Write], communications: Iterable[Communication]):
        super().__init__(log)
        self.rows = {(c.client_id, c.id): c for c in communications}

    def add(self, comm: Communication) -> Communication:
        if (comm.client_id, comm.id) in self.rows:
            raise Conflict("conflict", "a communication with this id exists")
        self.rows[(comm.client_id, comm.id)] = comm
        self._wrote("add", comm)
        return comm

    def put(self, comm: Communication) -> Communication:
        if (comm.client_id, comm.id) not in self.rows:
            raise StorageRefused(f"communications.put of communication {comm.id}, which is not stored")
        self.rows[(comm.client_id, comm.id)] = comm
        self._wrote("put", comm)
        return comm

    def get(self, client_id: str, comm_id: str) -> Communication:
        comm = self.rows.get((client_id, comm_id))
        if comm is None or comm.deleted_at is not None:
            raise NotFound(f"communication {comm_id} not found")
        return comm

    def page(self, client_id: str, filters: dict[str, Any], limit: int, after: Position | None
             ) -> tuple[list[Communication], Position | None]:
        """Newest first (by id), deleted ones left out; positions are {"id": the last id answered}."""
        low = ulid_bound(filters["from"]) if filters.get("from") else ""
        high = ulid_bound(filters["to"], True) if filters.get("to") else "\uffff"
        if low > high:
            raise StorageRefused("DynamoDB refuses a BETWEEN whose lower bound is above its upper bound")
        fields = {"contact_id": "client_contact_id", "project_id": "project_id", "thread_id": "thread_id"}
        q = (filters.get("q") or "").casefold()
        found = [c for c in reversed(self.of_client(client_id))
                 if c.deleted_at is None and low <= c.id <= high and (after is None or c.id < after["id"])
                 and (not filters.get("type") or c.type in filters["type"])
                 and all(getattr(c, field) == filters[name] for name, field in fields.items() if filters.get(name))
                 and q in "\n".join((c.subject or "", c.body or "")).casefold()]
        return found[:limit], {"id": found[limit - 1].id} if len(found) > limit else None

    def of_client(self, client_id: str) -> list[Communication]:
        return [c for (cid, _), c in sorted(self.rows.items()) if cid == client_id]


class FakeThreads(_Fake):
    name = "threads"

    def __init__(self, log: list[Write], threads: Iterable[Thread]):
        super().__init__(log)
        self.rows = {(t.client_id, t.id): t for t in threads}

    def add(self, thread: Thread) -> Thread:
        if (thread.client_id, thread.id) in self.rows:
            raise Conflict("conflict", "a thread with this id exists")
        self.rows[(thread.client_id, thread.id)] = thread
        self._wrote("add", thread)
        return thread

    def put(self, thread: Thread) -> Thread:
        if (thread.client_id, thread.id) not in self.rows:
            raise StorageRefused(f"threads.put of thread {thread.id}, which is not stored")
        self.rows[(thread.client_id, thread.id)] = thread
        self._wrote("put", thread)
        return thread

    def get(self, client_id: str, thread_id: str) -> Thread:
        if (client_id, thread_id) not in self.rows:
            raise NotFound(f"thread {thread_id} not found")
        return self.rows[(client_id, thread_id)]

    def of_client(self, client_id: str) -> list[Thread]:
        return [t for (cid, _), t in sorted(self.rows.items()) if cid == client_id]


class FakeStores:
    """One tenant's stores in memory (cosmicpython's fake unit of work): `committed` lists every write that took
    effect, in order; a refused request leaves it as it was. Records passed here are stored, not committed."""

    def __init__(self, *clients: Client, segments: Iterable[Segment] = (), threads: Iterable[Thread] = (),
                 communications: Iterable[Communication] = (), senders: dict[str, list[ContactRef]] | None = None,
                 tenant_id: str = "t1", actor: str | None = "user-1"):
        self.tenant_id, self.actor = tenant_id, actor
        self.committed: list[Write] = []
        log = self.committed
        self.clients = FakeClients(log, clients)
        self.tasks = FakeTasks(log)
        self.associations = FakeAssociations(log)
        self.segments = FakeSegments(log, segments)
        self.inbox = FakeInbox(log, senders or {})
        self.communications = FakeCommunications(log, communications)
        self.threads = FakeThreads(log, threads)
        self.settings = Unfaked(log, "settings")
        self.categories = Unfaked(log, "categories")
        self.contacts = Unfaked(log, "contacts")
        self.portal = Unfaked(log, "portal")
        self.node = Unfaked(log, "node")
        self.rate_limits = Unfaked(log, "rate_limits")
        self.activity = Unfaked(log, "activity")
        self.facts = Unfaked(log, "facts")
        self.jobs = Unfaked(log, "jobs")
        self.imports = Unfaked(log, "imports")

    def written(self, method: str) -> list[Any]:
        """What was given to one write method (e.g. "tasks.update"), call after call."""
        return [what for name, what in self.committed if name == method]

    def claim_inbound_address(self, address: str, previous: str | None) -> None:
        raise NotFaked("FakeStores does not fake claim_inbound_address")


class FakeMailbox:
    """Inbound emails as SES stores them, by (bucket, key); kept attachments by key."""

    def __init__(self, objects: dict[tuple[str, str], bytes]):
        self.objects = objects
        self.kept: list[str] = []

    def read(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]

    def keep_attachment(self, key: str, data: bytes, content_type: str) -> str:
        self.kept.append(key)
        return key


class FakeDirectory:
    """What spans tenants: inbound addresses and the tenant each routes to."""

    def __init__(self, addresses: dict[str, str]):
        self.addresses = {address.casefold(): tenant_id for address, tenant_id in addresses.items()}

    def tenants(self, after: str | None = None) -> Iterator[str]:
        return iter(sorted(t for t in set(self.addresses.values()) if after is None or t > after))

    def tenant_of_address(self, address: str) -> str | None:
        return self.addresses.get(address.casefold())


if TYPE_CHECKING:
    def _passes_as_stores(fake: FakeStores) -> Stores:  # mypy tests/fakes.py: each fake method matches its port
        return fake
