"""Inbound email: find the tenant, the client and contact, the thread, and log it once."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain import communications as dm
from chalicelib.domain.communication_cases import with_response_time
from chalicelib.domain.threads import Thread
from chalicelib.domain.values import utcnow
from chalicelib.inbound_mime import ParsedEmail, all_reply_ids, normalise_subject

log = logging.getLogger(__name__)

PREVIEW = 200
# put(bucket_key, data, content_type) -> the stored key
Store = Callable[[str, bytes, str], str]


def _thread_for(stores: Any, client_id: str, parsed: ParsedEmail, now: datetime) -> str | None:
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


def _new_thread(stores: Any, client_id: str, subject: str, now: datetime) -> Thread:
    thread = Thread(id=str(ULID.from_datetime(now)), tenant_id=stores.tenant_id, client_id=client_id,
                    subject=subject or "(no subject)", type="email", created_at=now, updated_at=now)
    return stores.threads.add(thread)


def log_inbound(stores: Any, client_id: str, contact_id: str | None, parsed: ParsedEmail, to_email: str | None,
                put_attachment: Store) -> dm.Communication | None:
    """Log the email on the client; None when its Message-ID was logged already."""
    now = utcnow()
    # A Date: header before 1970 is bogus and has no ULID (ids are ULIDs of the moment): take the arrival time.
    occurred = parsed.date if parsed.date and parsed.date.timestamp() >= 0 else now
    comm_id = str(ULID.from_datetime(occurred))
    if parsed.message_id and not stores.inbox.remember_message_id(parsed.message_id, client_id, comm_id):
        log.info("inbound %s already logged", parsed.message_id)
        return None
    attachments = [dm.Attachment(filename=a.filename, content_type=a.content_type, size=a.size,
                                 key=put_attachment(f"{stores.tenant_id}/{client_id}/{comm_id}/{a.filename}",
                                                    a.data, a.content_type))
                   for a in parsed.attachments]
    for filename, reason in parsed.rejected_attachments:
        log.warning("inbound %s: attachment %s not stored: %s", parsed.message_id, filename, reason)
    comm = dm.Communication(
        id=comm_id, tenant_id=stores.tenant_id, client_id=client_id, type="email", direction="inbound",
        status="delivered", subject=parsed.subject or None, body=parsed.text or None, from_email=parsed.from_email,
        to_email=to_email, cc=parsed.cc, attachments=attachments, message_id=parsed.message_id,
        client_contact_id=contact_id, thread_id=_thread_for(stores, client_id, parsed, now), occurred_at=occurred,
        delivered_at=now, created_by="inbound-email", created_at=now, updated_at=now)
    return stores.communications.add(with_response_time(stores, comm))


def sender_contact(stores: Any, parsed: ParsedEmail) -> tuple[str, str] | None:
    """(client id, contact id) of the live contact with the sender's address, the most recent one first."""
    matches = sorted(stores.inbox.contacts_with_email(parsed.from_email), key=lambda c: c.sk, reverse=True)
    return (matches[0].client_id, matches[0].id) if matches else None
