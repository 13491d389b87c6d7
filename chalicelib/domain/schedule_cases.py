"""The schedules' jobs: a fan-out over the tenant directory, then each tenant's segment refreshes or rescoring.

A schedule starts one fan-out job (the tenants' directory paged, a page per step) and runs it while it has time;
the fan-out starts one job per tenant, each with an id fixed by its period, so a schedule delivered twice (or a
fan-out step redone) starts nothing twice. The tenants' jobs run on the queue in parallel; a tenant's
`refresh_segments` job fans out once more, to one `segment_refresh` job per due segment (segment_refresh.py).
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from datetime import datetime

from chalicelib.domain import job_cases, scoring_cases, segment_refresh
from chalicelib.domain.clients import new_client_cutoff
from chalicelib.domain.jobs import Job, StepResult
from chalicelib.domain.ports import Directory, Stores
from chalicelib.domain.values import iso, ulid_bound, utcnow

SYSTEM_TENANT = "~system"  # the fan-out jobs' partition: no tenant id starts with "~"
TENANTS_PER_STEP = 200
PAGES_PER_STEP = 20  # rescore: pages of 100 clients per step, so progress is saved every 2,000 clients at most
REFRESH, RESCORE = "refresh_segments", "rescore"
FAN_OUT = {REFRESH: "refresh_segments_fanout", RESCORE: "rescore_fanout"}

Deadline = Callable[[], bool]


def refresh_segments(stores: Stores, now: datetime | None, deadline: Deadline) -> Job:
    """Hourly: one `refresh_segments` job per tenant for the hour of `now` (the schedule's time)."""
    at = now or utcnow()
    return _fan_out(stores, REFRESH, at.replace(minute=0, second=0, microsecond=0), at, deadline)


def recalculate_scores(stores: Stores, now: datetime | None, deadline: Deadline) -> Job:
    """Daily: one `rescore` job per tenant for the day of `now`: prune the `new` list, rescore every client."""
    at = now or utcnow()
    return _fan_out(stores, RESCORE, at.replace(hour=0, minute=0, second=0, microsecond=0), at, deadline)


def _fan_out(stores: Stores, kind: str, period: datetime, as_of: datetime, deadline: Deadline) -> Job:
    """Start the kind's fan-out job (in the system partition `stores`) and run it here while time is left."""
    job = job_cases.start_job(stores, FAN_OUT[kind], {"kind": kind, "period": iso(period), "at": iso(as_of)},
                              job_id=ulid_bound(period), enqueue=False)
    return job_cases.run_inline(stores, job, deadline)


def fan_out_step(stores: Stores, job: Job, stop: Deadline, *, directory: Directory,
                 stores_for: Callable[[str], Stores]) -> StepResult:
    """One page of the tenant directory: start the kind's job of each tenant (its id: the period's)."""
    after = job.state.get("after")
    tenants = list(itertools.islice(directory.tenants(after=after), TENANTS_PER_STEP))
    period = datetime.fromisoformat(job.params["period"])
    for tenant_id in tenants:
        job_cases.start_job(stores_for(tenant_id), job.params["kind"], {"at": job.params["at"]},
                            job_id=ulid_bound(period))
    return StepResult(state={"after": tenants[-1] if tenants else after}, processed=len(tenants),
                      result={"tenant_jobs": len(tenants)}, done=len(tenants) < TENANTS_PER_STEP)


def refresh_step(stores: Stores, job: Job, stop: Deadline) -> StepResult:
    """A `segment_refresh` job for each of the tenant's due segments (the same refresh a create or `POST .../refresh`
    runs), until `stop()`; a segment whose refresh is started is no longer due, so the next step (or a redelivery)
    starts only the rest, and each job's id is this job's plus the segment's: nothing starts twice."""
    started, left = segment_refresh.refresh_due(stores, at=datetime.fromisoformat(job.params["at"]),
                                                job_prefix=job.id, stop=stop)
    return StepResult(state={}, processed=started, result={"segments_started": started}, done=left == 0)


def rescore_step(stores: Stores, job: Job, stop: Deadline) -> StepResult:
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


def register(directory: Directory, stores_for: Callable[[str], Stores]) -> None:
    """Make the schedules' job kinds runnable; a fan-out reads `directory` and starts jobs in `stores_for(tenant)`."""
    fan_out = functools.partial(fan_out_step, directory=directory, stores_for=stores_for)
    for kind in FAN_OUT.values():
        job_cases.register_kind(kind, fan_out)
    job_cases.register_kind(REFRESH, refresh_step)
    job_cases.register_kind(RESCORE, rescore_step)
