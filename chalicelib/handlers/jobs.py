"""The jobs worker behind app.run_jobs: one SQS message, one bounded step of a job, a backoff when it fails."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib import queue
from chalicelib.domain import job_cases
from chalicelib.domain.jobs import MAX_ATTEMPTS, retry_delay
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
        log.error("malformed job message %r (receive %s); it goes to the dead-letter queue", raw.get("body"), count)
        _back_off(receipt, count)
        raise
    try:
        return job_cases.handle_message(message, stop, stores_for=Stores, receive_count=count)
    except Exception:
        _back_off(receipt, count)
        raise


def _back_off(receipt: str, count: int) -> None:
    """Retry after a growing delay rather than the queue's 30-minute visibility; after the last receive at once,
    so the message reaches the dead-letter queue soon."""
    try:
        queue.retry_later(receipt, retry_delay(count) if count < MAX_ATTEMPTS else 0)
    except Exception:  # the queue's own visibility timeout still brings it back
        log.exception("could not set the retry delay of a job message")
