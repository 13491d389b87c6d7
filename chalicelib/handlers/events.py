"""Event handlers behind app.py's Lambda entry points: the schedules (fan-outs to jobs) and inbound mail."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import unquote_plus

from chalicelib import telemetry
from chalicelib.blobs import InboundMail
from chalicelib.domain import inbound_cases, schedule_cases
from chalicelib.domain.inbound_cases import ByRecipient, Received
from chalicelib.domain.jobs import Job
from chalicelib.domain.schedule_cases import SYSTEM_TENANT
from chalicelib.handlers import job_kinds  # noqa: F401 - the schedules' job kinds
from chalicelib.handlers.jobs import deadline
from chalicelib.tables.stores import Directory, Stores


# --- schedules: fan-outs to one job per tenant -------------------------------------------------------------------
def refresh_segments(remaining_ms: Callable[[], int] | None = None, now: datetime | None = None) -> dict:
    """Hourly: one `refresh_segments` job per tenant for the hour of `now` (the schedule's time)."""
    with telemetry.invocation("schedule", "schedule run", function="refresh_segments") as seen:
        return _fanned_out(seen, schedule_cases.refresh_segments(Stores(SYSTEM_TENANT), now, deadline(remaining_ms)))


def recalculate_scores(remaining_ms: Callable[[], int] | None = None, now: datetime | None = None) -> dict:
    """Daily: one `rescore` job per tenant for the day of `now`: prune the `new` list, rescore every client."""
    with telemetry.invocation("schedule", "schedule run", function="recalculate_scores") as seen:
        return _fanned_out(seen, schedule_cases.recalculate_scores(Stores(SYSTEM_TENANT), now,
                                                                   deadline(remaining_ms)))


def scheduled_at(event: dict) -> datetime | None:
    """The time EventBridge scheduled the run for (the same in a duplicate delivery); None when absent."""
    try:
        return datetime.fromisoformat(event["time"])
    except (KeyError, TypeError, ValueError):
        return None


def _fanned_out(seen: telemetry.Invocation, job: Job) -> dict:
    """The run's answer and log line: the tenants whose job it started, and whether the fan-out is unfinished (the
    rest continues on the job queue). Each tenant's job logs what it refreshed or rescored (see handlers/jobs.py)."""
    tenants, unfinished = job.result.get("tenant_jobs", 0), job.status != "done"
    seen.note(job_id=job.id, job_kind=job.kind, schedule=job.params["kind"], tenants=tenants, status=job.status,
              unfinished=unfinished)
    seen.count("ScheduleRuns")
    seen.count("ScheduleTenants", tenants)
    seen.count("ScheduleUnfinished", int(unfinished))
    return {"fan_out_job": job.id, "kind": job.params["kind"], "status": job.status, "tenant_jobs": tenants}


# --- inbound mail: SES stores each email in S3 ---------------------------------------------------------------------
def handle_s3_records(event: dict) -> dict:
    """Every object an S3 `ObjectCreated` event names (SES stores one email per object)."""
    results = [handle_inbound_email(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
               for r in event.get("Records", []) if "s3" in r]
    return results[0] if len(results) == 1 else {"results": results}


def handle_inbound_email(bucket: str, key: str) -> dict:
    """Log an inbound email stored by SES; what cannot be logged is answered with its reason, never dropped. One
    log line per email: tenant, outcome, attachments, the reason of a rejection (no address, name or body)."""
    with telemetry.invocation("inbound", "inbound email", function="on_inbound_email") as seen:
        received = inbound_cases.receive(InboundMail(), bucket, key, ByRecipient(Directory(), Stores))
        seen.note(tenant=received.tenant_id, outcome=received.status, matched=received.status in MATCHED,
                  attachments=received.attachments, reason=received.reason,
                  communication_id=received.communication.id if received.communication else None)
        seen.count(INBOUND_METRICS[received.status])
        return _outcome(received)


MATCHED = ("logged", "duplicate")
INBOUND_METRICS = {"logged": "InboundMatched", "duplicate": "InboundMatched", "unmatched": "InboundUnmatched",
                   "rejected": "InboundRejected"}


def _outcome(received: Received) -> dict:
    if received.status == "rejected":
        return {"status": "rejected", "reason": received.reason}
    if received.status == "unmatched":
        return {"status": "unmatched", "id": received.unmatched_id}
    return {"status": received.status,
            "communication_id": received.communication.id if received.communication else None}
