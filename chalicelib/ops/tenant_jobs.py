"""The per-tenant ops commands as jobs: what each starts (recount, verify, segments, rescore, reindex), how it reads."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain import import_cases, job_cases, ops_cases, schedule_cases, segment_refresh
from chalicelib.domain.values import iso, utcnow

if TYPE_CHECKING:
    from chalicelib.domain.jobs import Job
    from chalicelib.domain.ports import Stores

LIVE = ("live", "1")


@dataclass(frozen=True)
class Started:
    """A job an ops command started, with what to call it on screen and what it counts."""

    job: Job
    label: str
    unit: str = "clients"


@dataclass
class Plan:
    """What a command started for one tenant, and what it left out (and why)."""

    started: list[Started] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Starter = Callable[["Stores", bool], Plan]  # (the tenant's stores, enqueue step 0?) -> the jobs started


def _live_clients(stores: Stores) -> int:
    """About how many clients a pass over the live list reads: the counters (exact after a recount)."""
    return stores.clients.counts([LIVE])[LIVE]


def rescore(stores: Stores, enqueue: bool) -> Plan:
    """The daily rescore of one tenant, now: prune the `new` list, rescore every live client."""
    job = job_cases.start_job(stores, schedule_cases.RESCORE, {"at": iso(utcnow())}, total=_live_clients(stores),
                              enqueue=enqueue)
    return Plan([Started(job, f"rescore {stores.tenant_id}")])


def reindex(stores: Stores, enqueue: bool) -> Plan:
    """The lookup keys (email, VAT number...) of every live client written again."""
    job = job_cases.start_job(stores, import_cases.REINDEX, {}, total=_live_clients(stores), enqueue=enqueue)
    return Plan([Started(job, f"reindex {stores.tenant_id}")])


def segments(stores: Stores, enqueue: bool) -> Plan:
    """A refresh of every active dynamic segment, as `POST /v1/segments/{id}/refresh` starts one: named on the
    segment first (a refresh under way stops), then its job. Static segments' members are picked by hand."""
    plan, at = Plan(), utcnow()
    for segment in stores.segments.all():
        name = f"segment {segment.name!r} ({segment.id})"
        if not segment.is_dynamic:
            plan.notes.append(f"{name}: static, its members are picked by hand (recount recounts it)")
            continue
        if not segment.is_active:
            plan.notes.append(f"{name}: inactive, left as it is")
            continue
        job = segment_refresh.begin(stores, segment.id, at=at)
        if job is None:
            plan.notes.append(f"{name}: deleted meanwhile")
            continue
        if enqueue:
            job_cases.enqueue(stores, job)
        plan.started.append(Started(job, f"{name} of {stores.tenant_id}"))
    if not plan.started and not plan.notes:
        plan.notes.append("no segments")
    return plan


def recount(stores: Stores, enqueue: bool) -> Plan:
    """Counters and chips recounted from the items they count (the job's errors: what it found and repaired)."""
    job = ops_cases.start_recount(stores, enqueue=enqueue)
    return Plan([Started(job, f"recount {stores.tenant_id}")])


def verify(stores: Stores, enqueue: bool) -> Plan:
    """The tenant's derived data checked against what it derives from; differences are the job's errors."""
    job = ops_cases.start_verify(stores, enqueue=enqueue)
    return Plan([Started(job, f"verify {stores.tenant_id}")])


def summary(job: Job) -> str:
    """The job's outcome in words: its result counters, for the last line of its progress."""
    result = dict(job.result)
    if job.kind == schedule_cases.RESCORE:
        return (f"rescored {count(result.get('rescored', 0), 'client')}, "
                f"pruned {count(result.get('pruned_new_entries', 0), 'entry', 'entries')} of the new list")
    if job.kind == import_cases.REINDEX:
        return f"{count(result.get('indexed', 0), 'lookup key')} written"
    if job.kind == ops_cases.VERIFY:
        found = result.get("differences", len(job.errors))
        return f"{count(found, 'difference')}:" if found else "no difference"
    if job.kind == ops_cases.RECOUNT:
        fixed = {k: v for k, v in result.items() if k in ops_cases.FIXES and v}
        return "repaired " + (", ".join(f"{k.replace('_', ' ')} {_number(v)}" for k, v in fixed.items()) or "nothing")
    if job.kind == segment_refresh.KIND:
        if "members" in result:
            return count(result["members"], "member")
        return {"superseded": "stopped: a newer refresh of it took over", "deleted": "stopped: segment deleted",
                "invalid_criteria": "not refreshed: its criteria are invalid"}.get(result.get("outcome", ""), "done")
    return ", ".join(f"{key.replace('_', ' ')} {_number(value)}" for key, value in result.items()) or "done"


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def fails_the_command(job: Job) -> bool:
    """Whether the job's errors are failures (differences, invalid criteria) rather than what it repaired."""
    return bool(job.errors) and job.kind != ops_cases.RECOUNT


def difference(error: dict[str, Any]) -> str:
    """One of a job's errors as a line: `check  subject: message` (a verify job's differences have all three)."""
    check, subject, message = error.get("check"), error.get("subject"), error.get("message")
    head = "  ".join(str(part) for part in (check, subject) if part)
    return f"{head}: {message}" if head and message else head or str(message or error)


STARTERS: dict[str, Starter] = {"recount": recount, "verify": verify, "segments": segments, "rescore": rescore,
                                "reindex": reindex}
