"""Follow-up tasks on a client: the record, their list order, status stamping and the create/update use cases."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field
from ulid import ULID

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import Record, utcnow

TaskStatus = Literal["open", "done"]
NOT_NULL = ("title", "status")
_NO_DUE_DATE = "~"  # sorts after every YYYY-MM-DD: open tasks without a due date come last


class Task(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    client_id: str
    title: str
    due_date: date | None = None
    assignee_id: str | None = None
    status: TaskStatus = "open"
    completed_at: datetime | None = None
    created_by: str | None = None
    updated_by: str | None = Field(default=None, exclude=True)
    created_at: datetime
    updated_at: datetime


def order_key(task: Task) -> list[str]:
    """Open tasks by due date (none last), then done ones, most recently completed first; ids break ties."""
    if task.status == "open":
        return ["0", task.due_date.isoformat() if task.due_date else _NO_DUE_DATE, task.id]
    done = task.completed_at or task.updated_at
    return ["1", f"{10 ** 15 - int(done.timestamp() * 1000):015d}", task.id]


def with_changes(task: Task, changes: dict[str, Any], now: datetime) -> Task:
    """The task with the named fields written; a status change stamps or clears `completed_at`."""
    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed.field(key, "may not be null")
    update = dict(changes)
    if update.get("status", task.status) != task.status:
        update["completed_at"] = now if update["status"] == "done" else None
    changed = task.model_copy(update=update)
    return changed if changed == task else changed.model_copy(update={"updated_at": now})


def create_task(tasks: Any, clients: Any, client_id: str, data: dict[str, Any], *, actor: str | None,
                now: datetime | None = None) -> Task:
    """A new task of an existing client (archived ones too: their history is kept and followed up)."""
    clients.get(client_id)
    at = now or utcnow()
    status = data.get("status") or "open"
    task = Task(**{**data, "status": status}, id=str(ULID.from_datetime(at)), tenant_id=tasks.tenant_id,
                client_id=client_id, completed_at=at if status == "done" else None, created_by=actor,
                created_at=at, updated_at=at)
    return tasks.add(task)


def update_task(tasks: Any, client_id: str, task_id: str, changes: dict[str, Any], *, actor: str | None = None,
                now: datetime | None = None) -> Task:
    current = tasks.get(client_id, task_id)
    updated = with_changes(current, changes, now or utcnow())
    if updated == current:
        return current
    return tasks.update(current, updated.model_copy(update={"updated_by": actor}))


def list_tasks(tasks: Any, clients: Any, client_id: str, status: str | None = None) -> list[Task]:
    """Every task of the client (optionally of one status) in list order."""
    clients.get(client_id)
    return sorted((t for t in tasks.of_client(client_id) if status is None or t.status == status), key=order_key)
