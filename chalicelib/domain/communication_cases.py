"""Communication use cases: list, log, send, edit, delete; email goes out through the one mail sender."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from chalicelib.domain import rate_limits
from chalicelib.domain.communications import Communication, apply_type_rules, move_status
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.ports import Position, Stores
from chalicelib.domain.response_times import response_times
from chalicelib.domain.values import utcnow

DEFAULT_SENDER = "no-reply@nexusrms.io"

# send(from_address, to, cc, bcc, subject, body) -> message id; raises on failure
Sender = Callable[..., str]


def list_communications(stores: Stores, client_id: str, filters: dict[str, Any], limit: int,
                        after: Position | None) -> tuple[list[Communication], Position | None]:
    """A page of the client's communications, newest first, narrowed by `filters` (type, contact_id, project_id,
    thread_id, from, to, q)."""
    stores.clients.get(client_id)  # 404 for a client of another tenant
    low, high = filters.get("from"), filters.get("to")
    if low and high and low > high:  # `from` after `to`: no day is in both (and DynamoDB refuses such a range)
        return [], None
    return stores.communications.page(client_id, filters, limit, after)


def get_communication(stores: Stores, client_id: str, comm_id: str) -> Communication:
    return stores.communications.get(client_id, comm_id)


def follow_ups(stores: Stores, due_before: str | None, limit: int,
               after: Position | None) -> tuple[list[Communication], Position | None]:
    """Open follow-ups across the tenant, soonest first (due on or before `due_before`, an ISO date, when given)."""
    return stores.communications.followups(due_before, limit, after)


def _recipient(stores: Stores, client_id: str, contact_id: str | None) -> str | None:
    """`to_email` default: the linked contact's address, else the client's primary contact's."""
    if contact_id:
        return stores.contacts.get(client_id, contact_id).email
    client = stores.clients.get(client_id)
    return client.primary_contact.email if client.primary_contact else None


def _deliver(stores: Stores, comm: Communication, send: Sender, now: datetime) -> Communication:
    """Send an email; a failed send is kept as `failed`, nothing lost."""
    sender = stores.settings.get("client").sending_address or DEFAULT_SENDER
    try:
        message_id = send(from_address=sender, to=[comm.to_email], cc=comm.cc, bcc=comm.bcc,
                          subject=comm.subject or "", text=comm.body or "")
    except Exception:  # the mail sender's failure: recorded on the communication
        return comm.model_copy(update={"status": "failed", "from_email": sender, "updated_at": now})
    return comm.model_copy(update={"status": "sent", "sent_at": now, "message_id": message_id,
                                   "from_email": sender, "updated_at": now})


def log_communication(stores: Stores, client_id: str, data: dict[str, Any], *, actor: str | None,
                      send: Sender) -> Communication:
    stores.clients.get(client_id)  # 404 for a client of another tenant
    data = apply_type_rules(data)
    send_now = data.pop("send_now", True)
    now = utcnow()
    _check_references(stores, client_id, data)
    occurred = data.pop("occurred_at", None) or now
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    if data["type"] == "email":
        data.setdefault("direction", "outbound")
        if data["direction"] == "outbound":
            data["to_email"] = data.get("to_email") or _recipient(stores, client_id, data.get("client_contact_id"))
            if not data["to_email"]:
                raise ValidationFailed.field("to_email", "is required: the client has no primary contact")
            data["status"] = "draft" if not send_now else "sent"
        else:
            data["status"] = "delivered"
    comm = Communication(**{k: v for k, v in data.items() if v is not None}, id=str(ULID.from_datetime(occurred)),
                            tenant_id=stores.tenant_id, client_id=client_id, occurred_at=occurred,
                            created_by=actor, created_at=now, updated_at=now)
    if comm.type == "email" and comm.direction == "outbound" and send_now:
        rate_limits.spend(stores.rate_limits, [rate_limits.outbound_emails()])  # refused: nothing sent, nothing stored
        comm = _deliver(stores, comm.model_copy(update={"status": "draft"}), send, now)
    elif comm.status == "sent" and comm.sent_at is None:
        comm = comm.model_copy(update={"sent_at": comm.occurred_at})
    stored = stores.communications.add(with_response_time(stores, comm))
    _remember(stores, stored)
    return stored


def with_response_time(stores: Stores, comm: Communication) -> Communication:
    """An inbound item logged after its answer (a past `occurred_at`, an email assigned late) is answered already:
    its response time is known at creation, computed as the stream computes it, so the answer shows it."""
    if comm.direction != "inbound":
        return comm
    times, _ = response_times([*stores.communications.of_client(comm.client_id), comm])
    return comm.model_copy(update={"response_time_minutes": times[comm.id]})


def _remember(stores: Stores, comm: Communication) -> None:
    """Replies quote our Message-ID: record it so inbound mail threads under this email."""
    if comm.message_id:
        stores.inbox.remember_message_id(comm.message_id, comm.client_id, comm.id)


def send_draft(stores: Stores, client_id: str, comm_id: str, send: Sender) -> Communication:
    comm = stores.communications.get(client_id, comm_id)
    if comm.type != "email" or comm.status not in ("draft", "failed"):
        raise Conflict("invalid_status", "only email drafts (or failed emails) can be sent")
    rate_limits.spend(stores.rate_limits, [rate_limits.outbound_emails()])  # refused: the draft stays a draft
    stored = stores.communications.put(_deliver(stores, comm, send, utcnow()))
    _remember(stores, stored)
    return stored


def update_communication(stores: Stores, client_id: str, comm_id: str, changes: dict[str, Any]) -> Communication:
    comm = stores.communications.get(client_id, comm_id)
    now = utcnow()
    status = changes.pop("status", None)
    _check_references(stores, client_id, changes)
    if status == "sent" and comm.status in ("draft", "failed") and comm.type == "email":
        raise Conflict("invalid_status", "send a draft with POST .../send")
    if status == "failed" and status != comm.status:
        raise Conflict("invalid_status", "only a failed send marks a communication failed")
    if changes:
        merged = apply_type_rules({**comm.model_dump(exclude={"id", "client_id", "tenant_id", "created_at",
                                                                  "updated_at", "occurred_at"}), **changes})
        comm = comm.model_copy(update={**{k: merged.get(k) for k in changes}, "updated_at": now,
                                       "duration_minutes": merged.get("duration_minutes")})
    if status:
        comm = move_status(comm, status, now)
    return stores.communications.put(comm)


def delete_communication(stores: Stores, client_id: str, comm_id: str) -> None:
    comm = stores.communications.get(client_id, comm_id)
    now = utcnow()
    stores.communications.put(comm.model_copy(update={"deleted_at": now, "updated_at": now}))


def _check_references(stores: Stores, client_id: str, data: dict[str, Any]) -> None:
    """The contact and thread a communication names (on create and on every change) are the client's own."""
    if data.get("client_contact_id"):
        try:
            stores.contacts.get(client_id, data["client_contact_id"])
        except NotFound:
            raise ValidationFailed.field("client_contact_id", "is not a contact of this client") from None
    if data.get("thread_id"):
        try:
            stores.threads.get(client_id, data["thread_id"])
        except NotFound:
            raise ValidationFailed.field("thread_id", "is not a thread of this client") from None

