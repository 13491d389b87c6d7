"""Event handlers behind app.py's Lambda entry points: the schedules and inbound mail."""
from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Callable

from ulid import ULID

from chalicelib.config import get_settings
from chalicelib.domain import inbound_cases as inbound
from chalicelib.domain import scoring_cases, segment_cases
from chalicelib.domain.clients import new_client_cutoff, utcnow
from chalicelib.tables.items import UnmatchedItem
from chalicelib.tables.inbox import tenant_of_address
from chalicelib.tables.stores import Stores
from chalicelib.tables.tenants import all_tenants

log = logging.getLogger(__name__)


def refresh_segments(remaining_ms: Callable[[], int] | None = None, now: datetime | None = None,
                     reserve_ms: int = 60_000) -> dict:
    """Refresh every due segment of every tenant, stopping a minute before the Lambda's time runs out.

    A segment cut off keeps its progress and stays due, so the next run resumes it.
    """
    deadline = _deadline(remaining_ms, reserve_ms)
    finished = unfinished = 0
    for tenant_id in all_tenants():
        try:
            done, left = segment_cases.refresh_due(Stores(tenant_id), deadline=deadline, now=now)
        except Exception:
            log.exception("refreshing the segments of tenant %s failed", tenant_id)
            continue
        finished, unfinished = finished + done, unfinished + left
    return {"refreshed": finished, "unfinished": unfinished}


def recalculate_scores(remaining_ms: Callable[[], int] | None = None, now: datetime | None = None,
                       reserve_ms: int = 60_000) -> dict:
    """Daily: rescore every client of every tenant (days since the last project move on by themselves) and prune
    the `new` list facet; a tenant cut off by the Lambda's time limit resumes where it stopped the next day."""
    now = now or utcnow()
    deadline = _deadline(remaining_ms, reserve_ms)
    pruned = scored = unfinished = 0
    for tenant_id in all_tenants():
        stores = Stores(tenant_id)
        pruned += stores.clients.prune_new(new_client_cutoff(stores.settings.get("client"), now))
        if deadline():
            unfinished += 1
            continue
        try:
            count, finished = scoring_cases.rescore_all(stores, deadline=deadline, now=now)
        except Exception:
            log.exception("rescoring the clients of tenant %s failed", tenant_id)
            continue
        scored, unfinished = scored + count, unfinished + (not finished)
    return {"pruned_new_entries": pruned, "rescored": scored, "unfinished_tenants": unfinished}


def _deadline(remaining_ms: Callable[[], int] | None, reserve_ms: int) -> Callable[[], bool]:
    """True once less than `reserve_ms` of the Lambda's time is left (14 minutes when not told)."""
    if remaining_ms is None:
        end = time.monotonic() + 14 * 60
        remaining_ms = lambda: int((end - time.monotonic()) * 1000)  # noqa: E731
    return lambda: remaining_ms() < reserve_ms


def handle_s3_records(event: dict) -> dict:
    """Every object an S3 `ObjectCreated` event names (SES stores one email per object)."""
    from urllib.parse import unquote_plus

    results = [handle_inbound_email(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
               for r in event.get("Records", []) if "s3" in r]
    return results[0] if len(results) == 1 else {"results": results}


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
