"""Task use cases: a client's follow-up tasks listed, created and updated."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain.ports import Stores
from chalicelib.domain.tasks import Task, order_key, with_changes
from chalicelib.domain.values import utcnow


def list_tasks(stores: Stores, client_id: str, status: str | None = None) -> list[Task]:
    """Every task of the client (optionally of one status) in list order."""
    stores.clients.get(client_id)
    return sorted((t for t in stores.tasks.of_client(client_id) if status is None or t.status == status),
                  key=order_key)


def create_task(stores: Stores, client_id: str, data: dict[str, Any], *, actor: str | None,
                now: datetime | None = None) -> Task:
    """A new task of an existing client (archived ones too: their history is kept and followed up)."""
    stores.clients.get(client_id)
    at = now or utcnow()
    status = data.get("status") or "open"
    task = Task(**{**data, "status": status}, id=str(ULID.from_datetime(at)), tenant_id=stores.tenant_id,
                client_id=client_id, completed_at=at if status == "done" else None, created_by=actor,
                created_at=at, updated_at=at)
    return stores.tasks.add(task)


def update_task(stores: Stores, client_id: str, task_id: str, changes: dict[str, Any], *, actor: str | None = None,
                now: datetime | None = None) -> Task:
    """Write the named fields (a status change stamps or clears `completed_at`); equal values write nothing."""
    current = stores.tasks.get(client_id, task_id)
    updated = with_changes(current, changes, now or utcnow())
    if updated == current:
        return current
    return stores.tasks.update(current, updated.model_copy(update={"updated_by": actor}))
