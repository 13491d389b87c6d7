"""Communications logged on a client: per-type rules, status moves with server-stamped times, inbound mail's records."""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import Field

from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.values import Model, Record

CommType = Literal["email", "phone", "sms", "meeting", "note"]
Direction = Literal["inbound", "outbound"]
Status = Literal["draft", "sent", "delivered", "read", "failed"]
STATUS_ORDER = {"draft": 0, "failed": 0, "sent": 1, "delivered": 2, "read": 3}
STAMPS = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at"}


class Attachment(Model):
    filename: str
    content_type: str
    size: int
    key: str


class Communication(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    client_id: str
    type: CommType
    direction: Direction = "outbound"
    status: Status = "sent"
    subject: str | None = None
    body: str | None = None
    from_email: str | None = None
    to_email: str | None = None
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    integration_id: str | None = None
    message_id: str | None = None
    from_phone: str | None = None
    to_phone: str | None = None
    duration_minutes: int | None = None
    outcome: str | None = None
    requires_followup: bool = False
    followup_date: date | None = None
    followup_notes: str | None = None
    meeting_date: date | None = None
    start_time: str | None = None
    end_time: str | None = None
    location_type: Literal["in_person", "video", "phone"] | None = None
    location: str | None = None
    attendees: list[str] = Field(default_factory=list)
    action_items: list[str] = Field(default_factory=list)
    project_id: str | None = None
    client_contact_id: str | None = None
    thread_id: str | None = None
    occurred_at: datetime
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    response_time_minutes: int | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(default=None, exclude=True)


class KnownMessage(Model):
    """A stored email's Message-ID: the communication (of which client) it was logged as."""

    client_id: str
    communication_id: str


class ContactRef(Model):
    """A contact named by its client and id (inbound mail matches senders to contacts by address)."""

    client_id: str
    contact_id: str


class UnmatchedEmail(Model):
    """An inbound email from a sender no contact has, kept (where SES stored it) until staff assign it."""

    id: str
    received_at: datetime
    from_email: str
    to_email: str | None = None
    subject: str | None = None
    body_preview: str | None = None
    bucket: str = Field(exclude=True)  # where SES stored it: not shown
    key: str = Field(exclude=True)


def day_range(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """`from` / `to` dates as the first and last moment of those days (UTC)."""
    low = datetime.combine(start, time.min, tzinfo=UTC) if start else None
    high = datetime.combine(end, time.max, tzinfo=UTC) if end else None
    return low, high


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def apply_type_rules(data: dict[str, Any]) -> dict[str, Any]:
    """Check and complete a new communication's fields by its type (422 naming the field)."""
    data = dict(data)
    kind = data["type"]
    missing = [f for f in {"email": ("subject", "body"), "meeting": ("subject",), "note": ("body",),
                           "sms": ("body",), "phone": ("direction",)}[kind] if not data.get(f)]
    if missing:
        raise ValidationFailed(f"{', '.join(missing)} required for {kind}",
                               [{"field": f, "message": f"is required for {kind}"} for f in missing])
    if kind == "phone":
        data.setdefault("subject", "Phone Call")
        if not data.get("subject"):
            data["subject"] = "Phone Call"
    if kind == "note":
        if data.get("direction") == "inbound":
            raise ValidationFailed.field("direction", "a note is always outbound (internal)")
        data["direction"] = "outbound"
        data["status"] = "sent"
    if kind == "meeting" and data.get("start_time") and data.get("end_time"):
        duration = _minutes(data["end_time"]) - _minutes(data["start_time"])
        if duration < 0:
            raise ValidationFailed.field("end_time", "is before start_time")
        data["duration_minutes"] = duration
    return data


def move_status(comm: Communication, status: str, now: datetime) -> Communication:
    """Status moves forward only; delivered and read exist for email and sms; the server stamps the time."""
    if status == comm.status:
        return comm
    if status in ("delivered", "read") and comm.type not in ("email", "sms"):
        raise Conflict("invalid_status", f"a {comm.type} cannot be {status}")
    if status == "draft" or STATUS_ORDER[status] < STATUS_ORDER[comm.status] or comm.status == "failed" \
            and status != "sent":
        raise Conflict("invalid_status", f"status cannot move from {comm.status} to {status}")
    update: dict[str, Any] = {"status": status, "updated_at": now}
    for step, stamp in STAMPS.items():
        if STATUS_ORDER[step] <= STATUS_ORDER.get(status, 0) and getattr(comm, stamp) is None and status != "failed":
            update[stamp] = now
    return comm.model_copy(update=update)
