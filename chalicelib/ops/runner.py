"""An ops command's job run here step by step, its saved progress shown after each step (nothing enqueued)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chalicelib.domain import job_cases
from chalicelib.domain.errors import VersionConflict
from chalicelib.domain.jobs import Job, after_failure
from chalicelib.domain.values import utcnow

if TYPE_CHECKING:
    from chalicelib.domain.ports import Stores
    from chalicelib.ops.progress import Progress

POLL = 0.5  # seconds between reads of the job's saved progress while its steps run here
INTERRUPTED = "interrupted by the operator (Ctrl-C)"


class Interrupted(Exception):
    """Ctrl-C while a job ran here: the job is failed at its saved step, so `jobs retry` resumes it on the runner."""

    def __init__(self, job: Job) -> None:
        super().__init__(INTERRUPTED)
        self.job = job


def total_of(job: Job) -> int | None:
    """What the job will count up to, when known: its `total`, or the estimate a step saved (a segment refresh)."""
    if job.total is not None:
        return job.total
    total = job.state.get("total")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def run_here(stores: Stores, job: Job, progress: Progress) -> Job:
    """Run every step of `job` in this process and answer it finished (done, or failed with its error).

    Nothing is enqueued: the deadline never stops a step, and it shows the job's saved progress (its `processed`,
    saved after each step) at most every POLL seconds. A step that raises fails the job as the worker's last attempt
    would (the error saved) and the exception goes on; a step another worker saved first is taken from the table.
    """
    last = 0.0

    def deadline() -> bool:
        nonlocal last
        if time.monotonic() - last >= POLL:
            last = time.monotonic()
            saved = stores.jobs.get(job.kind, job.id)
            progress.update(saved.processed, total_of(saved))
        return False

    current = job
    try:
        while current.status not in ("done", "failed"):
            current = job_cases.run_inline(stores, current, deadline)
    except KeyboardInterrupt:
        raise Interrupted(_stop(stores, job)) from None
    progress.update(current.processed, total_of(current))
    return current


def _stop(stores: Stores, job: Job) -> Job:
    saved = stores.jobs.get(job.kind, job.id)
    if saved.status in ("done", "failed"):
        return saved
    failed = after_failure(saved, INTERRUPTED, utcnow(), last=True)
    try:
        stores.jobs.save(failed, step=saved.step)
    except VersionConflict:  # a step finished meanwhile (a worker's): the job goes on there
        return stores.jobs.get(job.kind, job.id)
    return failed
