"""Follow-up tasks on a client: the record, their list order and status stamping (use cases: task_cases)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import Record

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
