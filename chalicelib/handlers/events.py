"""Event handlers behind app.py's Lambda entry points: the schedules (fan-outs to jobs) and inbound mail."""
from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.config import get_settings
from chalicelib.domain import inbound_cases as inbound
from chalicelib.domain import job_cases, scoring_cases, segment_cases
from chalicelib.domain.clients import new_client_cutoff
from chalicelib.domain.jobs import Job, StepResult
from chalicelib.domain.values import iso, ulid_bound, utcnow
from chalicelib.handlers.jobs import deadline
from chalicelib.tables.inbox import tenant_of_address
from chalicelib.tables.items import UnmatchedItem
from chalicelib.tables.stores import Stores
from chalicelib.tables.tenants import all_tenants

log = logging.getLogger(__name__)


# --- schedules: fan-outs to one job per tenant -------------------------------------------------------------------
# A schedule starts one fan-out job (the tenants' directory paged, a page per step) and runs it while it has time;
# the fan-out starts one job per tenant, each with an id fixed by its period, so a schedule delivered twice (or a
# fan-out step redone) starts nothing twice. The tenants' jobs run on the queue in parallel.
SYSTEM_TENANT = "~system"  # the fan-out jobs' partition: no tenant id starts with "~"
TENANTS_PER_STEP = 200
PAGES_PER_STEP = 20  # rescore: pages of 100 clients per step, so progress is saved every 2,000 clients at most
FAN_OUT = {"refresh_segments": "refresh_segments_fanout", "rescore": "rescore_fanout"}


def refresh_segments(remaining_ms: Callable[[], int] | None = None, now: datetime | None = None) -> dict:
    """Hourly: one `refresh_segments` job per tenant for the hour of `now` (the schedule's time)."""
    at = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    return _fan_out("refresh_segments", at, remaining_ms, as_of=now or utcnow())


def recalculate_scores(remaining_ms: Callable[[], int] | None = None, now: datetime | None = None) -> dict:
    """Daily: one `rescore` job per tenant for the day of `now`: prune the `new` list, rescore every client."""
    at = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    return _fan_out("rescore", at, remaining_ms, as_of=now or utcnow())


def scheduled_at(event: dict) -> datetime | None:
    """The time EventBridge scheduled the run for (the same in a duplicate delivery); None when absent."""
    try:
        return datetime.fromisoformat(event["time"])
    except (KeyError, TypeError, ValueError):
        return None


def _fan_out(kind: str, period: datetime, remaining_ms: Callable[[], int] | None,
             as_of: datetime | None = None) -> dict:
    stores = Stores(SYSTEM_TENANT)
    job = job_cases.start_job(stores, FAN_OUT[kind], {"kind": kind, "period": iso(period),
                                                      "at": iso(as_of or period)},
                              job_id=ulid_bound(period), enqueue=False)
    job = job_cases.run_inline(stores, job, deadline(remaining_ms))
    return {"fan_out_job": job.id, "kind": kind, "status": job.status,
            "tenant_jobs": job.result.get("tenant_jobs", 0)}


def fan_out_step(stores: Any, job: Job, stop: Callable[[], bool]) -> StepResult:
    """One page of the tenant directory: start the kind's job of each tenant (its id: the period's)."""
    after = job.state.get("after")
    tenants = list(itertools.islice(all_tenants(after=after), TENANTS_PER_STEP))
    period = datetime.fromisoformat(job.params["period"])
    for tenant_id in tenants:
        job_cases.start_job(Stores(tenant_id), job.params["kind"], {"at": job.params["at"]},
                            job_id=ulid_bound(period))
    return StepResult(state={"after": tenants[-1] if tenants else after}, processed=len(tenants),
                      result={"tenant_jobs": len(tenants)}, done=len(tenants) < TENANTS_PER_STEP)


def refresh_step(stores: Any, job: Job, stop: Callable[[], bool]) -> StepResult:
    """The tenant's due segments, until `stop()`: each segment saves its progress page by page, so the next step
    (or a redelivery) resumes it; finished segments are no longer due."""
    finished, unfinished = segment_cases.refresh_due(stores, deadline=stop,
                                                     now=datetime.fromisoformat(job.params["at"]))
    return StepResult(state={}, processed=finished, result={"segments_refreshed": finished},
                      done=unfinished == 0)


def rescore_step(stores: Any, job: Job, stop: Callable[[], bool]) -> StepResult:
    """Prune the `new` list (first step), then rescore clients page by page from the saved cursor."""
    now = datetime.fromisoformat(job.params["at"])
    state, result = dict(job.state), {}
    if not state.get("pruned"):
        result["pruned_new_entries"] = stores.clients.prune_new(new_client_cutoff(stores.settings.get("client"), now))
        state["pruned"] = True
    scored, after = 0, state.get("after")
    for _ in range(PAGES_PER_STEP):
        count, after = scoring_cases.rescore_page(stores, after, now=now)
        scored += count
        if after is None or stop():
            break
    state["after"] = after
    return StepResult(state=state, processed=scored, result={**result, "rescored": scored}, done=after is None)


job_cases.register_kind("refresh_segments_fanout", fan_out_step)
job_cases.register_kind("rescore_fanout", fan_out_step)
job_cases.register_kind("refresh_segments", refresh_step)
job_cases.register_kind("rescore", rescore_step)


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
