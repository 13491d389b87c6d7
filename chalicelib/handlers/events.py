"""Event handlers behind app.py's Lambda entry points: table stream, schedules and inbound mail."""
from __future__ import annotations

import logging
from typing import Any

from datetime import datetime

from ulid import ULID

from chalicelib.config import get_settings
from chalicelib.domain import inbound_cases as inbound
from chalicelib.tables.base import UnmatchedItem
from chalicelib.tables.inbox import tenant_of_address
from chalicelib.tables.stores import Stores

from chalicelib.domain.clients import new_client_cutoff, utcnow
from chalicelib.domain.response_times import response_times
from chalicelib.tables.clients import ClientRepository
from chalicelib.domain.threads import thread_stats
from chalicelib.tables.communications import CommunicationRepository
from chalicelib.tables.threads import ThreadRepository
from chalicelib.tables.settings import SettingsRepository
from chalicelib.tables.streams import decode_record
from chalicelib.tables.tenants import all_tenants

log = logging.getLogger(__name__)


def handle_stream_batch(records: list[Any]) -> dict:
    """Apply each record's effects; failed records are reported so only they (and later ones) are retried.

    Effects are recounts from stored state, done once per client per batch: a batch delivered twice or out of
    order leaves the same figures.
    """
    failures = []
    clients: dict[tuple[str, str], list[str]] = {}
    for record in records:
        try:
            change = decode_record(record)
        except Exception:
            log.exception("stream record %s could not be decoded", record.sequence_number)
            failures.append({"itemIdentifier": record.sequence_number})
            continue
        if change is not None and change.kind == "communication":
            item = change.new or change.old
            clients.setdefault((item.tenant_id, item.client_id), []).append(record.sequence_number)
    for (tenant_id, client_id), sequence_numbers in clients.items():
        try:
            recount_client_communications(tenant_id, client_id)
        except Exception:
            log.exception("response times of client %s/%s failed", tenant_id, client_id)
            failures.extend({"itemIdentifier": n} for n in sequence_numbers)
    return {"batchItemFailures": failures}


def recount_client_communications(tenant_id: str, client_id: str) -> None:
    """Recompute a client's response times and thread counts from its communications; write what changed."""
    repo = CommunicationRepository(tenant_id)
    comms = repo.of_client(client_id)
    times, average = response_times(comms)
    for comm in comms:
        if comm.id in times and comm.response_time_minutes != times[comm.id]:
            repo.set_response_time(comm, times[comm.id])
    clients = ClientRepository(tenant_id)
    if clients.get(client_id).avg_response_time_minutes != average:
        clients.set_avg_response_time(client_id, average)
    threads = ThreadRepository(tenant_id)
    stats = thread_stats(comms)
    for thread in threads.of_client(client_id):
        wanted = stats.get(thread.id, (0, None, None))
        if (thread.messages_count, thread.last_activity_at, thread.preview) != wanted:
            threads.set_stats(thread, wanted)


def refresh_segments(now: Any = None) -> dict:
    """Refresh every due segment (segments arrive with their own issue); answers what it did."""
    return {"refreshed": 0}


def recalculate_scores(now: datetime | None = None) -> dict:
    """Daily upkeep: prune each tenant's `new` list facet of clients past its new-client window."""
    now = now or utcnow()
    pruned = 0
    for tenant_id in all_tenants():
        settings = SettingsRepository(tenant_id).get("client")
        pruned += ClientRepository(tenant_id).prune_new(new_client_cutoff(settings, now))
    return {"pruned_new_entries": pruned}


def handle_inbound_email(bucket: str, key: str) -> dict:
    """Log an inbound email stored by SES; what cannot be logged is logged with its reason, never dropped."""
    from chalicelib import blobs
    from chalicelib.inbound_mime import MalformedEmail, parse_email

    try:
        parsed = parse_email(blobs.get_object(bucket, key))
    except MalformedEmail as exc:
        log.error("inbound s3://%s/%s rejected: %s", bucket, key, exc)
        return {"status": "rejected", "reason": str(exc)}
    for problem in parsed.problems:
        log.warning("inbound s3://%s/%s: %s", bucket, key, problem)
    recipients = parsed.to + parsed.cc
    tenant_id, to_email = next(((t, r) for r in recipients if (t := tenant_of_address(r))), (None, None))
    if tenant_id is None:
        log.error("inbound s3://%s/%s rejected: no tenant receives mail for %s", bucket, key, recipients)
        return {"status": "rejected", "reason": "unknown recipient"}
    stores = Stores(tenant_id)
    match = inbound.sender_contact(stores, parsed)
    if match is None:
        item = UnmatchedItem(id=str(ULID()), received_at=utcnow(), from_email=parsed.from_email, to_email=to_email,
                             subject=parsed.subject or None, body_preview=parsed.text[:inbound.PREVIEW] or None,
                             bucket=bucket, key=key)
        stores.inbox.add_unmatched(item)
        return {"status": "unmatched", "id": item.id}
    comm = inbound.log_inbound(stores, match[0], match[1], parsed, to_email, _attachment_store)
    return {"status": "logged" if comm else "duplicate", "communication_id": comm.id if comm else None}


def _attachment_store(key: str, data: bytes, content_type: str) -> str:
    from chalicelib import blobs

    blobs.put_object(get_settings().attachments_bucket, key, data, content_type)
    return key
