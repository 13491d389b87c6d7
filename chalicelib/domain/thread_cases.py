"""Thread use cases: a client's conversation threads listed, started, read with their messages, renamed, archived."""
from __future__ import annotations

from typing import Any

from ulid import ULID

from chalicelib.domain.communications import Communication
from chalicelib.domain.ports import Stores
from chalicelib.domain.threads import Thread, ThreadType, latest_activity
from chalicelib.domain.values import utcnow

MESSAGES = 1000  # the messages a thread answers with


def list_threads(stores: Stores, client_id: str) -> list[Thread]:
    """Every thread of the client, latest activity first."""
    stores.clients.get(client_id)  # 404 for a client of another tenant
    return sorted(stores.threads.of_client(client_id), key=latest_activity, reverse=True)


def start_thread(stores: Stores, client_id: str, subject: str, type_: ThreadType,
                 created_by_name: str | None) -> Thread:
    """A new thread on the client, by the stores' actor (named `created_by_name`)."""
    stores.clients.get(client_id)
    now = utcnow()
    thread = Thread(id=str(ULID.from_datetime(now)), tenant_id=stores.tenant_id, client_id=client_id,
                    subject=subject, type=type_, created_by=stores.actor, created_by_name=created_by_name,
                    created_at=now, updated_at=now)
    return stores.threads.add(thread)


def get_thread(stores: Stores, client_id: str, thread_id: str) -> tuple[Thread, list[Communication]]:
    """The thread and its messages, oldest first."""
    thread = stores.threads.get(client_id, thread_id)
    messages, _ = stores.communications.page(client_id, {"thread_id": thread_id}, MESSAGES, None)
    return thread, list(reversed(messages))


def update_thread(stores: Stores, client_id: str, thread_id: str, changes: dict[str, Any]) -> Thread:
    """Rename or archive a thread: the named fields that are not null change."""
    thread = stores.threads.get(client_id, thread_id)
    changes = {name: value for name, value in changes.items() if value is not None}
    return stores.threads.put(thread.model_copy(update={**changes, "updated_at": utcnow()}))
