"""Long work as a job: its record, the outcome of one step, and the rules that move a job from step to step."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib.domain.values import Record

JobStatus = Literal["queued", "running", "done", "failed"]
FINISHED = ("done",)  # a failed job can still be resumed (a retry, a replayed dead letter); a done one never
MAX_ATTEMPTS = 5      # receives of one step's message; the queue's redrive policy (maxReceiveCount) says the same
MAX_ERRORS = 1_000    # errors kept on the job; the rest are counted in result["errors_dropped"]
MAX_ERROR_TEXT = 2_000  # characters of a failure's message kept on the job


class Job(Record):
    id: str
    tenant_id: str
    kind: str
    status: JobStatus = "queued"
    params: dict = Field(default_factory=dict)   # what the starter asked for (JSON-able)
    state: dict = Field(default_factory=dict)    # the step's own progress marker (cursor, offset...), JSON-able
    step: int = 0                                # steps finished; a worker message names the step it runs
    processed: int = 0
    total: int | None = None
    result: dict = Field(default_factory=dict)   # counters the steps add up
    errors: list[dict] = Field(default_factory=list)
    error: str | None = None                     # why it failed
    attempts: int = 0                            # failed attempts of the current step
    sent_step: int | None = None                 # the step whose queue message was last sent (runner's own)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass
class StepResult:
    state: dict
    processed: int = 0
    result: dict = field(default_factory=dict)   # numbers are added to job.result[k]; other values replace
    errors: list[dict] = field(default_factory=list)
    done: bool = False


def message(job: Job) -> dict[str, Any]:
    """The queue message that runs the job's next step."""
    return {"tenant_id": job.tenant_id, "kind": job.kind, "job_id": job.id, "step": job.step}


def after_step(job: Job, outcome: StepResult, now: datetime) -> Job:
    """The job once a step has finished: progress, counters and errors added, one step further."""
    result = dict(job.result)
    for key, value in outcome.result.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        old = result.get(key)
        result[key] = old + value if number and isinstance(old, (int, float)) and not isinstance(old, bool) else value
    room = max(0, MAX_ERRORS - len(job.errors))
    if len(outcome.errors) > room:
        result["errors_dropped"] = result.get("errors_dropped", 0) + len(outcome.errors) - room
    return job.model_copy(update={
        "state": outcome.state, "processed": job.processed + outcome.processed, "result": result,
        "errors": job.errors + outcome.errors[:room], "step": job.step + 1, "attempts": 0, "error": None,
        "status": "done" if outcome.done else "running", "updated_at": now,
        "finished_at": now if outcome.done else None})


def after_failure(job: Job, error: str, now: datetime, *, last: bool) -> Job:
    """The job once an attempt at its step raised: one attempt more, failed after the last one."""
    return job.model_copy(update={
        "attempts": job.attempts + 1, "error": error[:MAX_ERROR_TEXT], "updated_at": now,
        "status": "failed" if last else job.status, "finished_at": now if last else None})


def resumed(job: Job, now: datetime) -> Job:
    """A failed job given another chance at the step it failed (attempts start again)."""
    return job.model_copy(update={"status": "queued" if job.step == 0 else "running", "attempts": 0,
                                  "error": None, "finished_at": None, "updated_at": now})


def retry_delay(receive_count: int) -> int:
    """Seconds before a failed step's message is received again: 20, 40, 80, 160... at most 15 minutes."""
    return min(900, 10 * 2 ** max(1, receive_count))
