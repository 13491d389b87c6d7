"""The job runner: start a job, run its bounded steps inline or one per queue message, retry a failed one."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ulid import ULID

from chalicelib.domain.errors import Conflict, NotFound, VersionConflict
from chalicelib.domain.jobs import MAX_ATTEMPTS, Job, StepResult, after_failure, after_step, message, resumed
from chalicelib.domain.ports import Stores
from chalicelib.domain.values import is_key_id, utcnow

log = logging.getLogger(__name__)

Deadline = Callable[[], bool]
StepFn = Callable[[Stores, Job, Deadline], StepResult]  # (stores, job, deadline) -> the step's outcome
_KINDS: dict[str, StepFn] = {}


def register_kind(kind: str, step: StepFn) -> None:
    """Make `kind` runnable; its module must be imported wherever jobs run (app.py imports every use case)."""
    if not is_key_id(kind):
        raise ValueError(f"job kind {kind!r} cannot be part of a key")
    _KINDS[kind] = step


def kinds() -> list[str]:
    """Every registered kind."""
    return sorted(_KINDS)


def start_job(stores: Stores, kind: str, params: dict, *, job_id: str | None = None, total: int | None = None,
              enqueue: bool = True) -> Job:
    """Save the job queued and enqueue its step 0. A `job_id` that exists already answers the existing job and
    enqueues nothing, so a start repeated (a schedule delivered twice) starts nothing twice."""
    if kind not in _KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    if job_id is not None and not is_key_id(job_id):
        raise ValueError(f"job id {job_id!r} cannot be part of a key")
    now = utcnow()
    job = Job(id=job_id or str(ULID.from_datetime(now)), tenant_id=stores.tenant_id, kind=kind, params=params,
              total=total, created_at=now, updated_at=now)
    if not stores.jobs.create(job):
        return stores.jobs.get(kind, job.id)
    if enqueue:
        stores.jobs.enqueue(message(job))
    return job


def enqueue(stores: Stores, job: Job) -> None:
    """Send the message of the job's next step: for a job started with `enqueue=False` once its starter has
    prepared what the step reads (a step running before that would see a stale state)."""
    _send(stores, job)


def get_job(stores: Stores, kind: str, job_id: str) -> Job:
    return stores.jobs.get(kind, job_id)  # NotFound when absent


def list_jobs(stores: Stores, kind: str, limit: int, after: str | None) -> tuple[list[Job], str | None]:
    """A page of the kind's jobs, newest first, and the id to continue after (None on the last page)."""
    return stores.jobs.page(kind, limit, after)


def retry_job(stores: Stores, kind: str, job_id: str) -> Job:
    """Give a failed job another run of the step it failed, from its saved progress."""
    job = stores.jobs.get(kind, job_id)
    if job.status != "failed":
        raise Conflict("job_not_failed", f"job {job_id} is {job.status}; only a failed job can be retried")
    again = resumed(job, utcnow())
    stores.jobs.save(again, step=job.step, status="failed")
    _send(stores, again)
    return again


def run_inline(stores: Stores, job: Job, deadline: Deadline) -> Job:
    """Run steps here until the job is done or `deadline()`; a job not done has its next step enqueued.

    A step that raises fails the job (its error saved) and the exception goes on to the caller; a failed job is
    answered as it is (retry_job resumes it).
    """
    while job.status not in ("done", "failed"):
        step = _KINDS.get(job.kind)
        if step is None:
            return _fail(stores, job, f"unknown job kind {job.kind!r}")
        try:
            outcome = step(stores, job, deadline)
        except Exception as exc:
            _fail(stores, job, _describe(exc))
            raise
        try:
            job = _advance(stores, job, outcome)
        except VersionConflict:  # another worker runs this job: it has the step now
            return stores.jobs.get(job.kind, job.id)
        if not job.finished and deadline():
            _send(stores, job)
            break
    return job


def handle_message(message: dict, deadline: Deadline, *, stores_for: Callable[[str, str | None], Stores],
                   receive_count: int = 1) -> dict[str, Any]:
    """The worker: run the one step a queue message names, save it (only if no other delivery did), enqueue the
    next. Raises when the step raised, so the queue delivers the message again; the last receive fails the job.

    `stores_for(tenant_id, actor)` builds the tenant's stores; `params["actor"]` of a job is the steps' actor.
    """
    kind, job_id, step_no = message["kind"], message["job_id"], int(message["step"])
    stores = stores_for(message["tenant_id"], None)
    try:
        job = stores.jobs.get(kind, job_id)
    except NotFound:
        log.warning("job %s/%s of tenant %s does not exist; message dropped", kind, job_id, message["tenant_id"])
        return {"outcome": "unknown_job"}
    if step_no != job.step:
        if job.step == step_no + 1 and not job.finished and (job.sent_step is None or job.sent_step < job.step):
            # The step was saved but its successor never enqueued (a crash in between): enqueue it now.
            _send(stores, job)
            return {"outcome": "requeued", "step": job.step}
        return {"outcome": "ignored", "step": job.step}
    if job.finished:
        return {"outcome": "ignored", "step": job.step}
    step = _KINDS.get(kind)
    if step is None:
        _fail(stores, job, f"unknown job kind {kind!r}")
        return {"outcome": "failed", "step": job.step}
    if job.params.get("actor"):
        stores = stores_for(job.tenant_id, job.params["actor"])
    if job.status in ("queued", "failed"):  # failed: a replayed dead letter resumes it
        started = resumed(job, utcnow()).model_copy(update={"status": "running"})
        try:
            stores.jobs.save(started, step=job.step, status=job.status)
        except VersionConflict:
            return {"outcome": "ignored", "step": job.step}
        job = started
    try:
        outcome = step(stores, job, deadline)
    except Exception as exc:
        last = receive_count >= MAX_ATTEMPTS
        try:
            stores.jobs.save(after_failure(job, _describe(exc), utcnow(), last=last), step=job.step)
        except VersionConflict:
            pass  # another delivery finished the step meanwhile
        log.error("job %s/%s step %s failed (receive %s of %s)%s", kind, job_id, step_no, receive_count,
                  MAX_ATTEMPTS, ": the job is failed" if last else "", exc_info=exc)
        raise
    try:
        job = _advance(stores, job, outcome)
    except VersionConflict:  # a parallel delivery of the same step saved first; it enqueues the next
        return {"outcome": "ignored", "step": step_no + 1}
    did = {"step": job.step, "processed": outcome.processed, "result": outcome.result}
    if job.finished:
        return {"outcome": "done", **did}
    _send(stores, job)
    return {"outcome": "stepped", **did}


def _advance(stores: Stores, job: Job, outcome: StepResult) -> Job:
    after = after_step(job, outcome, utcnow())
    stores.jobs.save(after, step=job.step)
    return after


def _send(stores: Stores, job: Job) -> None:
    stores.jobs.enqueue(message(job))
    stores.jobs.mark_sent(job.kind, job.id, job.step)


def _fail(stores: Stores, job: Job, error: str) -> Job:
    failed = after_failure(job, error, utcnow(), last=True)
    try:
        stores.jobs.save(failed, step=job.step)
    except VersionConflict:
        return stores.jobs.get(job.kind, job.id)
    return failed


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
