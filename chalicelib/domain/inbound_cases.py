"""Inbound email: find the tenant, the client and contact, the thread, and log it once; or keep it unmatched."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from ulid import ULID

from chalicelib.domain.communication_cases import with_response_time
from chalicelib.domain.communications import Attachment, Communication, UnmatchedEmail
from chalicelib.domain.errors import NotFound
from chalicelib.domain.ports import Directory, Position, Stores
from chalicelib.domain.threads import Thread
from chalicelib.domain.values import utcnow
from chalicelib.inbound_mime import MalformedEmail, ParsedEmail, all_reply_ids, normalise_subject, parse_email

log = logging.getLogger(__name__)

PREVIEW = 200


class Mailbox(Protocol):
    """Where SES leaves inbound emails, and where the attachments of those logged are kept."""

    def read(self, bucket: str, key: str) -> bytes: ...

    def keep_attachment(self, key: str, data: bytes, content_type: str) -> str: ...


@dataclass(frozen=True)
class Destination:
    """Where an email is logged: the tenant's stores, the inbound address it came to, and the client (None: the
    sender's contact decides, and a sender no contact has leaves the email unmatched)."""

    stores: Stores
    to_email: str | None
    client_id: str | None = None


Route = Callable[[ParsedEmail], Destination | None]  # None: no tenant receives this email


@dataclass(frozen=True)
class ByRecipient:
    """The route of mail as SES delivers it: to the tenant of the first recipient (To, then Cc) that is a tenant's
    inbound address."""

    directory: Directory
    stores_for: Callable[[str], Stores]

    def __call__(self, parsed: ParsedEmail) -> Destination | None:
        for recipient in parsed.to + parsed.cc:
            if tenant_id := self.directory.tenant_of_address(recipient):
                return Destination(self.stores_for(tenant_id), recipient)
        return None


@dataclass(frozen=True)
class Received:
    """What became of an inbound email: logged (the communication), a duplicate, unmatched (kept), or rejected."""

    status: Literal["logged", "duplicate", "unmatched", "rejected"]
    communication: Communication | None = None
    unmatched_id: str | None = None
    reason: str | None = None
    message_id: str | None = None
    tenant_id: str | None = None
    attachments: int = 0


def receive(mailbox: Mailbox, bucket: str, key: str, route: Route) -> Received:
    """Log an inbound email stored at `bucket`/`key` where `route` sends it; what cannot be logged is logged with
    its reason, never dropped."""
    try:
        parsed = parse_email(mailbox.read(bucket, key))
    except MalformedEmail as exc:
        log.error("inbound s3://%s/%s rejected: %s", bucket, key, exc)
        return Received("rejected", reason=str(exc))
    for problem in parsed.problems:
        log.warning("inbound s3://%s/%s: %s", bucket, key, problem)
    destination = route(parsed)
    if destination is None:
        log.error("inbound s3://%s/%s rejected: no tenant receives mail for any of its %d recipients", bucket, key,
                  len(parsed.to + parsed.cc))
        return Received("rejected", reason="unknown recipient", attachments=len(parsed.attachments))
    stores = destination.stores
    client_id, contact_id = destination.client_id, None
    if client_id is None:
        sender = _sender_contact(stores, parsed)
        if sender is None:
            unmatched = UnmatchedEmail(id=str(ULID()), received_at=utcnow(), from_email=parsed.from_email,
                                       to_email=destination.to_email, subject=parsed.subject or None,
                                       body_preview=parsed.text[:PREVIEW] or None, bucket=bucket, key=key)
            stores.inbox.add_unmatched(unmatched)
            return Received("unmatched", unmatched_id=unmatched.id, tenant_id=stores.tenant_id,
                            attachments=len(parsed.attachments))
        client_id, contact_id = sender
    comm = _log(stores, client_id, contact_id, parsed, destination.to_email, mailbox)
    return Received("logged" if comm else "duplicate", communication=comm, message_id=parsed.message_id,
                    tenant_id=stores.tenant_id, attachments=len(parsed.attachments))


def unmatched(stores: Stores, limit: int, after: Position | None) -> tuple[list[UnmatchedEmail], Position | None]:
    """A page of the emails from unknown senders, newest first."""
    return stores.inbox.unmatched(limit, after)


def assign_unmatched(stores: Stores, mailbox: Mailbox, item_id: str, client_id: str) -> Communication:
    """Log an unmatched email on the chosen client (received again, as SES delivered it) and drop it from the
    unmatched list; when its Message-ID was logged meanwhile, that communication."""
    stores.clients.get(client_id)
    item = stores.inbox.get_unmatched(item_id)
    received = receive(mailbox, item.bucket, item.key, lambda parsed: Destination(stores, item.to_email, client_id))
    if received.status == "rejected":  # it was parsed when it arrived: the stored object changed since
        raise MalformedEmail(received.reason or "unparseable message")
    stores.inbox.remove_unmatched(item.id)
    if received.communication is not None:
        return received.communication
    known = stores.inbox.find_message(received.message_id) if received.message_id else None
    if known is None:  # a duplicate has a stored Message-ID: never the case
        raise NotFound(f"the communication of {received.message_id} not found")
    return stores.communications.get(known.client_id, known.communication_id)


def _thread_for(stores: Stores, client_id: str, parsed: ParsedEmail, now: datetime) -> str | None:
    """By In-Reply-To / References against stored Message-IDs, else by normalised subject, else a new thread."""
    for reply_id in all_reply_ids(parsed):
        known = stores.inbox.find_message(reply_id)
        if known is None or known.client_id != client_id:
            continue
        original = stores.communications.get(client_id, known.communication_id)
        if original.thread_id:
            return original.thread_id
        thread = _new_thread(stores, client_id, original.subject or parsed.subject, now)
        stores.communications.put(original.model_copy(update={"thread_id": thread.id}))
        return thread.id
    wanted = normalise_subject(parsed.subject)
    if not wanted:
        return None
    for thread in stores.threads.of_client(client_id):
        if normalise_subject(thread.subject) == wanted and thread.status == "active":
            return thread.id
    return _new_thread(stores, client_id, parsed.subject, now).id


def _new_thread(stores: Stores, client_id: str, subject: str, now: datetime) -> Thread:
    thread = Thread(id=str(ULID.from_datetime(now)), tenant_id=stores.tenant_id, client_id=client_id,
                    subject=subject or "(no subject)", type="email", created_at=now, updated_at=now)
    return stores.threads.add(thread)


def _log(stores: Stores, client_id: str, contact_id: str | None, parsed: ParsedEmail, to_email: str | None,
         mailbox: Mailbox) -> Communication | None:
    """Log the email on the client; None when its Message-ID was logged already."""
    now = utcnow()
    # A Date: header before 1970 is bogus and has no ULID (ids are ULIDs of the moment): take the arrival time.
    occurred = parsed.date if parsed.date and parsed.date.timestamp() >= 0 else now
    comm_id = str(ULID.from_datetime(occurred))
    if parsed.message_id and not stores.inbox.remember_message_id(parsed.message_id, client_id, comm_id):
        log.info("inbound %s already logged", parsed.message_id)
        return None
    attachments = [Attachment(filename=a.filename, content_type=a.content_type, size=a.size,
                              key=mailbox.keep_attachment(f"{stores.tenant_id}/{client_id}/{comm_id}/{a.filename}",
                                                          a.data, a.content_type))
                   for a in parsed.attachments]
    for number, (_, reason) in enumerate(parsed.rejected_attachments, 1):  # a file's name is the sender's text
        log.warning("inbound %s: rejected attachment %d not stored: %s", parsed.message_id, number, reason)
    comm = Communication(
        id=comm_id, tenant_id=stores.tenant_id, client_id=client_id, type="email", direction="inbound",
        status="delivered", subject=parsed.subject or None, body=parsed.text or None, from_email=parsed.from_email,
        to_email=to_email, cc=parsed.cc, attachments=attachments, message_id=parsed.message_id,
        client_contact_id=contact_id, thread_id=_thread_for(stores, client_id, parsed, now), occurred_at=occurred,
        delivered_at=now, created_by="inbound-email", created_at=now, updated_at=now)
    return stores.communications.add(with_response_time(stores, comm))


def _sender_contact(stores: Stores, parsed: ParsedEmail) -> tuple[str, str] | None:
    """(client id, contact id) of the live contact with the sender's address, the most recent one first."""
    matches = sorted(stores.inbox.contacts_with_email(parsed.from_email), key=lambda c: c.contact_id, reverse=True)
    return (matches[0].client_id, matches[0].contact_id) if matches else None
