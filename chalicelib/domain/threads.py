"""Conversation threads on a client: type, icon, status, and counts derived from their messages."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib.domain.communications import Communication
from chalicelib.domain.values import Record, iso

ThreadType = Literal["general", "email", "sms", "chat", "meeting"]
ICONS = {"general": "mdi-message-text", "email": "mdi-email", "sms": "mdi-pound", "chat": "mdi-message",
         "meeting": "mdi-account-group"}
PREVIEW_CHARS = 140


class Thread(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    client_id: str
    subject: str
    type: ThreadType = "general"
    status: Literal["active", "archived"] = "active"
    messages_count: int = 0
    last_activity_at: datetime | None = None
    preview: str | None = None
    created_by: str | None = None
    created_by_name: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def icon(self) -> str:
        return ICONS[self.type]

    def public(self) -> dict[str, Any]:
        data = super().public()
        data["icon"] = self.icon
        return data


Stats = tuple[int, datetime | None, str | None]


def latest_activity(thread: Thread) -> list[str]:
    """A thread's place in its client's list, latest activity first: (last activity or creation, id)."""
    return [iso(thread.last_activity_at or thread.created_at), thread.id]


def thread_stats(comms: list[Communication]) -> dict[str, Stats]:
    """messages_count, last_activity_at and preview (the latest message's text) of every thread."""
    stats: dict[str, Stats] = {}
    threaded = [(thread_id, c) for c in comms if c.deleted_at is None and (thread_id := c.thread_id)]
    for thread_id, comm in sorted(threaded, key=lambda pair: (pair[1].occurred_at, pair[1].id)):
        count, _, _ = stats.get(thread_id, (0, None, None))
        text = " ".join((comm.body or comm.subject or "").split())[:PREVIEW_CHARS] or None
        stats[thread_id] = (count + 1, comm.occurred_at, text)
    return stats
