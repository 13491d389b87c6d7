"""Job repository: a tenant's jobs of one kind in one partition by id (newest first), saved on a step condition."""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError

from chalicelib.domain.errors import NotFound, VersionConflict
from chalicelib.domain.jobs import Job
from chalicelib.tables import keys
from chalicelib.tables.attributes import JSONAttribute
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.tenants import register_tenant


class JobItem(TableItem, discriminator="job"):
    """One job; `kind` is the table's discriminator, so the job's kind is stored as `job_kind`."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    job_kind = UnicodeAttribute()
    status = UnicodeAttribute()
    params = JSONAttribute()
    state = JSONAttribute()
    step = NumberAttribute()
    processed = NumberAttribute()
    total = NumberAttribute(null=True)
    result = JSONAttribute()
    errors = JSONAttribute()
    error = UnicodeAttribute(null=True)
    attempts = NumberAttribute()
    sent_step = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)


def _item(job: Job) -> JobItem:
    data = job.model_dump(exclude={"kind"})
    return JobItem(keys.jobs_pk(job.tenant_id, job.kind), job.id, job_kind=job.kind, **data)


def _job(item: JobItem) -> Job:
    data = {name: getattr(item, name) for name in Job.model_fields if name != "kind"}
    return Job.model_validate({**{k: v for k, v in data.items() if v is not None}, "kind": item.job_kind})


def _conflict(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class JobRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def create(self, job: Job) -> bool:
        """Save a new job; False (nothing written) when a job of that kind and id exists already. A tenant with
        jobs is in the tenant directory (the schedules' fan-outs, under "~system", are no tenant's)."""
        if not self.tenant_id.startswith("~"):
            register_tenant(self.tenant_id)
        with storage_errors():
            try:
                _item(job).save(condition=JobItem.sk.does_not_exist())
            except PutError as exc:
                if _conflict(exc):
                    return False
                raise
        return True

    def get(self, kind: str, job_id: str) -> Job:
        with storage_errors():
            try:
                return _job(JobItem.get(keys.jobs_pk(self.tenant_id, kind), job_id, consistent_read=True))
            except JobItem.DoesNotExist:
                raise NotFound(f"job {job_id} not found") from None

    def save(self, job: Job, *, step: int, status: str | None = None) -> None:
        """Write the whole job if the stored one is still at `step` (and `status`): two deliveries of one step
        cannot both save it. VersionConflict otherwise."""
        condition = JobItem.sk.exists() & (JobItem.step == step)
        if status is not None:
            condition &= JobItem.status == status
        with storage_errors():
            try:
                _item(job).save(condition=condition)
            except PutError as exc:
                if _conflict(exc):
                    raise VersionConflict(f"job {job.id} moved on from step {step}") from None
                raise

    def mark_sent(self, kind: str, job_id: str, step: int) -> None:
        """Remember that the message of `step` went out, so a stale message does not send it again."""
        with storage_errors():
            try:
                TableItem._get_connection().update_item(
                    keys.jobs_pk(self.tenant_id, kind), job_id, actions=[JobItem.sent_step.set(step)],
                    condition=JobItem.sk.exists() & (JobItem.step == step))
            except UpdateError as exc:
                if not _conflict(exc):
                    raise

    def page(self, kind: str, limit: int, after: str | None = None) -> tuple[list[Job], str | None]:
        """Up to `limit` jobs, newest first, after the job id `after`; and the id to continue after, if more."""
        condition = JobItem.sk < after if after else None
        with storage_errors():
            items = list(JobItem.query(keys.jobs_pk(self.tenant_id, kind), condition, scan_index_forward=False,
                                       limit=limit + 1, page_size=limit + 1))
        jobs = [_job(i) for i in items[:limit]]
        return jobs, (jobs[-1].id if len(items) > limit else None)

    def enqueue(self, message: dict[str, Any]) -> None:
        """Send a job's step message to the jobs queue (SQS in AWS, the folder queue locally)."""
        from chalicelib import queue

        queue.send(message)
