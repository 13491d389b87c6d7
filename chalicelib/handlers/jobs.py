"""The jobs worker behind app.run_jobs: one SQS message, one bounded step of a job, a backoff when it fails."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import chalicelib.domain.ops_cases  # noqa: F401 - registers the ops job kinds
from chalicelib import queue, telemetry
from chalicelib.domain import job_cases, segment_refresh
from chalicelib.domain.jobs import MAX_ATTEMPTS, retry_delay
from chalicelib.domain.schedule_cases import RESCORE
from chalicelib.handlers import job_kinds  # noqa: F401 - the worker runs every kind, the schedules' too
from chalicelib.tables.stores import Stores

log = logging.getLogger(__name__)

RESERVE_MS = 60_000  # a step stops a minute before the function's time runs out, to save its progress


def deadline(remaining_ms: Callable[[], int] | None, reserve_ms: int = RESERVE_MS,
             default_s: float = 14 * 60) -> Callable[[], bool]:
    """True once less than `reserve_ms` of the Lambda's time is left (`default_s` when no context tells)."""
    if remaining_ms is None:
        end = time.monotonic() + default_s
        remaining_ms = lambda: int((end - time.monotonic()) * 1000)  # noqa: E731
    return lambda: remaining_ms() < reserve_ms


def run_jobs(records: Iterable[Any], context: Any = None) -> dict:
    """Each record (batch size 1) runs one step; a failure raises, so SQS delivers the message again after its
    backoff and, after MAX_ATTEMPTS receives, moves it to the dead-letter queue (the job is failed by then)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    outcomes = [_one(record, deadline(remaining, default_s=300)) for record in records]
    return outcomes[0] if len(outcomes) == 1 else {"outcomes": outcomes}


def _one(record: Any, stop: Callable[[], bool]) -> dict:
    raw = record if isinstance(record, dict) else record.to_dict()
    receipt = raw.get("receiptHandle", "")
    count = int(raw.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    try:
        message = json.loads(raw["body"])
        if not isinstance(message, dict) or not {"tenant_id", "kind", "job_id", "step"} <= message.keys():
            raise ValueError("a job message names tenant_id, kind, job_id and step")
    except ValueError:
        log.error("malformed job message (receive %s); it goes to the dead-letter queue", count)
        _back_off(receipt, count)
        raise
    with telemetry.invocation("job", "job step", function="run_jobs", tenant=message["tenant_id"],
                              job_kind=message["kind"], job_id=message["job_id"], step=message["step"],
                              receive=count) as seen:
        try:
            answer = job_cases.handle_message(message, stop, stores_for=Stores, receive_count=count)
        except Exception:
            seen.count("JobStepsFailed")
            seen.count("JobsFailed", int(count >= MAX_ATTEMPTS))
            _back_off(receipt, count)
            raise
        _observe(seen, message["kind"], answer)
        return answer


def _observe(seen: telemetry.Invocation, kind: str, answer: dict) -> None:
    """The step's line and metrics: what it did, and the throughput of the schedules' work."""
    outcome, processed = answer["outcome"], answer.get("processed", 0)
    seen.note(outcome=outcome, processed=processed, result=answer.get("result"))
    seen.count("JobStepsDone", int(outcome in ("stepped", "done")))
    seen.count("JobsDone", int(outcome == "done"))
    seen.count("JobsFailed", int(outcome == "failed"))
    if kind == RESCORE:
        seen.count("ClientsRescored", processed)
    if kind == segment_refresh.KIND:
        seen.count("SegmentCandidatesEvaluated", processed)
        seen.count("SegmentsRefreshed", int(outcome == "done"))


def _back_off(receipt: str, count: int) -> None:
    """Retry after a growing delay rather than the queue's 30-minute visibility; after the last receive at once,
    so the message reaches the dead-letter queue soon."""
    try:
        queue.retry_later(receipt, retry_delay(count) if count < MAX_ATTEMPTS else 0)
    except Exception:  # the queue's own visibility timeout still brings it back
        log.exception("could not set the retry delay of a job message")
