"""Segment refresh as a job: candidates from the facet partitions the criteria select, diffed page by page.

A refresh reads the smallest facet group that holds every client the criteria can match (`selecting_facets`;
every live client when none does), in client-id order, PAGE entries a page. Each page is a range of ids: the
candidates in it are read and checked against the whole criteria, the segment's members in the same range are
read too (a member outside the candidates is checked as well), and only the difference is written. So a page
done twice writes nothing new, and pages may be cut anywhere: the job saves the range it reached after each step.

The segment's `refresh` names the job doing its refresh; a job whose name is no longer there (criteria changed,
a newer refresh took over, the segment was deleted) stops before its next write, and only the named job writes
the progress, so two refreshes of one segment at once end with the members of the latest one.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from ulid import ULID

from chalicelib.domain import job_cases
from chalicelib.domain.clients import COUNTED_FACETS, Facet
from chalicelib.domain.errors import NotFound, Unavailable, ValidationFailed
from chalicelib.domain.jobs import Job, StepResult
from chalicelib.domain.ports import Stores
from chalicelib.domain.segment_criteria import Criteria, reads_lifetime_revenue, selecting_facets, validate_criteria
from chalicelib.domain.segments import RefreshProgress, Segment, belongs
from chalicelib.domain.values import iso, utcnow

log = logging.getLogger(__name__)

KIND = "segment_refresh"
PAGE = 200            # candidate entries per page: one BatchGet of the live ones (with the range's other members)
REQUEST_PAGE = 50     # the page a request runs when it has no time (a create, a criteria change): well under 1 s
PAGES_PER_STEP = 25   # progress saved on the job (and shown on the segment) at least every 5,000 candidates
WIDE = 8              # a plan reading more partitions than this is left to the worker entirely
LIVE: Facet = ("live", "1")

Deadline = Callable[[], bool]


def one_page() -> bool:
    """The deadline of a request that creates or changes a segment: one page of its refresh, then the worker."""
    return True


def queued(job_id: str) -> RefreshProgress:
    now = utcnow()
    return RefreshProgress(job_id=job_id, status="queued", started_at=now, updated_at=now)


def new_job_id(at: datetime | None = None) -> str:
    return str(ULID.from_datetime(at or utcnow()))


# --- starting --------------------------------------------------------------------------------------------

def start(stores: Stores, segment: Segment, *, at: datetime, run: Deadline | None) -> Segment:
    """Start the refresh job that `segment.refresh` names (written with the segment already) and run its steps
    here while `run()` allows (None: all of it on the worker); answers the segment as stored then."""
    assert segment.refresh is not None
    return _launch(stores, segment, _job(stores, segment.id, segment.refresh.job_id, at), run)


def _job(stores: Stores, segment_id: str, job_id: str, at: datetime) -> Job:
    return job_cases.start_job(stores, KIND, {"segment_id": segment_id, "at": iso(at)}, job_id=job_id, enqueue=False)


def _launch(stores: Stores, segment: Segment, job: Job, run: Deadline | None) -> Segment:
    if run is None:
        job_cases.enqueue(stores, job)
        return segment
    try:
        job_cases.run_inline(stores, job, run)
    except Unavailable:  # the segment is written: the worker retries the step from the job's progress
        log.warning("segment %s: refresh step failed in the request; left to the worker", segment.id, exc_info=True)
        try:
            job_cases.enqueue(stores, stores.jobs.get(KIND, job.id))
        except Unavailable:
            log.warning("segment %s: refresh not enqueued; the schedule restarts it once stale", segment.id)
    return stores.segments.get(segment.id)


def take_over(stores: Stores, segment: Segment, *, at: datetime, run: Deadline | None) -> Segment:
    """A new refresh of a stored segment: named on it (any earlier one stops), then started as `start`."""
    job = begin(stores, segment.id, at=at)
    if job is None:
        raise NotFound(f"segment {segment.id} not found")  # deleted meanwhile
    return _launch(stores, segment.model_copy(update={"refresh": queued(job.id)}), job, run)


def begin(stores: Stores, segment_id: str, *, at: datetime) -> Job | None:
    """Name a new refresh on the stored segment (any earlier one stops) and save its job, not enqueued yet; None
    when the segment was deleted meanwhile."""
    progress = queued(new_job_id(at))
    if not stores.segments.set_refresh(segment_id, progress):
        return None
    return _job(stores, segment_id, progress.job_id, at)


def refresh_due(stores: Stores, *, at: datetime, job_prefix: str, stop: Deadline) -> tuple[int, int]:
    """Start a refresh job for each of the tenant's due segments: (started, left for the next step). Each job's id
    is `<job_prefix>-<segment id>`, so a step done twice starts nothing twice."""
    started = left = 0
    for segment in stores.segments.all():
        if not segment.needs_refresh(at):
            continue  # a segment being refreshed is not due (unless its refresh is lost)
        if stop():
            left += 1
            continue
        job = job_cases.start_job(stores, KIND, {"segment_id": segment.id, "at": iso(at)},
                                  job_id=f"{job_prefix}-{segment.id}", enqueue=False)
        if job.status != "queued":
            continue  # this period's refresh of it runs, or ran, already (a step delivered twice)
        if stores.segments.set_refresh(segment.id, queued(job.id)):
            job_cases.enqueue(stores, job)
            started += 1
    return started, left


# --- the job ---------------------------------------------------------------------------------------------

def plan(stores: Stores, criteria: Criteria) -> tuple[list[Facet], int | None]:
    """The facet partitions a refresh reads, and about how many clients they hold (None: uncounted)."""
    threshold = stores.settings.get("client").high_value_threshold if reads_lifetime_revenue(criteria) else None
    groups = selecting_facets(criteria, threshold)
    counted = [f for f in dict.fromkeys(f for g in groups for f in g) if f[0] in COUNTED_FACETS]
    counts = stores.clients.counts([LIVE, *counted])

    def size(group: list[Facet]) -> int:
        return sum(counts.get(f, 0) for f in group)  # tag and category partitions are uncounted: small

    best = min(groups, key=size, default=None)
    if best is None or (len(best) > 1 and size(best) >= counts[LIVE]):
        return [LIVE], counts[LIVE]
    return best, size(best) if all(f[0] in COUNTED_FACETS for f in best) else None


def refresh_step(stores: Stores, job: Job, stop: Deadline) -> StepResult:
    """Pages of the refresh from the job's saved range until `stop()` (at least one page) or PAGES_PER_STEP."""
    try:
        segment = stores.segments.get(job.params["segment_id"])
    except NotFound:
        return StepResult(state=job.state, result={"outcome": "deleted"}, done=True)
    if segment.refresh is None or segment.refresh.job_id != job.id:
        return StepResult(state=job.state, result={"outcome": "superseded"}, done=True)
    at = datetime.fromisoformat(job.params["at"])
    try:
        criteria = validate_criteria(segment.criteria, stores.settings.custom_fields())
    except ValidationFailed as exc:  # e.g. a custom field it names was deleted since
        now = utcnow()
        stores.segments.set_refresh(segment.id, segment.refresh.model_copy(update={
            "status": "failed", "error": str(exc), "updated_at": now, "finished_at": now}), job.id)
        return StepResult(state=job.state, result={"outcome": "invalid_criteria"},
                          errors=[{"message": str(exc)}], done=True)
    state = dict(job.state)
    if "facets" not in state:
        facets, state["total"] = plan(stores, criteria)
        state["facets"] = [list(f) for f in facets]
    facets = [(name, value) for name, value in state["facets"]]
    in_a_hurry = stop()  # a request that runs one page only
    if in_a_hurry and len(facets) > WIDE:
        return StepResult(state=state)  # it leaves many partitions' queries to the worker
    size = min(PAGE, REQUEST_PAGE) if in_a_hurry else PAGE
    processed = 0
    for n, (entries, after, upto) in enumerate(_pages(stores, facets, state.get("after"), size), 1):
        if not _apply_page(stores, segment, criteria, entries, after, upto, at, job.id):
            return StepResult(state=state, processed=processed, result={"outcome": "superseded"}, done=True)
        processed += len(entries)
        if upto is None:
            return _finish(stores, segment, job, state, processed, at)
        state["after"] = upto
        if n >= PAGES_PER_STEP or stop():
            break
    stores.segments.set_refresh(segment.id, _progress(segment, job, state, processed, "running"), job.id,
                                count=stores.segments.count_members(segment.id))  # the count so far
    return StepResult(state=state, processed=processed)


def _progress(segment: Segment, job: Job, state: dict, processed: int, status: str) -> RefreshProgress:
    assert segment.refresh is not None
    now = utcnow()
    return segment.refresh.model_copy(update={
        "status": status, "processed": job.processed + processed, "total": state.get("total"), "updated_at": now,
        "finished_at": now if status == "done" else None})


def _finish(stores: Stores, segment: Segment, job: Job, state: dict, processed: int, at: datetime) -> StepResult:
    count = stores.segments.count_members(segment.id)
    final = stores.segments.finish_refresh(segment.id, count, at, _progress(segment, job, state, processed, "done"))
    return StepResult(state={**state, "after": None}, processed=processed,
                      result={"members": count} if final else {"outcome": "superseded"}, done=True)


def _candidates(stores: Stores, facets: list[Facet], after: str | None) -> Iterator[tuple[str, bool]]:
    """(client id, live) of the facets' entries after `after`, merged in id order, each client once."""
    last = None
    for client_id, live in heapq.merge(*(stores.segments.candidates(f, after) for f in facets)):
        if client_id != last:
            yield client_id, live
            last = client_id


def _pages(stores: Stores, facets: list[Facet], after: str | None, size: int
           ) -> Iterator[tuple[list[tuple[str, bool]], str | None, str | None]]:
    """(entries, after, upto) per page of `size` entries: `upto` is the page's last id, None on the last page
    (which then covers every id after `after`, so members past the last candidate are seen too)."""
    stream = _candidates(stores, facets, after)
    while True:
        entries = list(itertools.islice(stream, size))
        if len(entries) < size:
            yield entries, after, None
            return
        upto = entries[-1][0]
        yield entries, after, upto
        after = upto


def _apply_page(stores: Stores, segment: Segment, criteria: Criteria, entries: list[tuple[str, bool]],
                after: str | None, upto: str | None, at: datetime, job_id: str) -> bool:
    """Make the members in (after, upto] those of the range's clients that match; False when this refresh is no
    longer the segment's (nothing written then)."""
    members = set(stores.segments.member_ids(segment.id, after=after, upto=upto))
    wanted_ids = [cid for cid, live in entries if live] + sorted(members.difference(cid for cid, _ in entries))
    clients = stores.clients.get_many(wanted_ids)
    wanted = {cid for cid, client in clients.items() if belongs(criteria, client)}
    add, remove = sorted(wanted - members), sorted(members - wanted)
    if not add and not remove:
        return True
    if not _still_ours(stores, segment.id, job_id):
        return False
    stores.segments.add_members(segment.id, [clients[cid] for cid in add], None, "automatic", at)
    stores.segments.remove_members(segment.id, remove)
    return True


def _still_ours(stores: Stores, segment_id: str, job_id: str) -> bool:
    """Whether the segment still names this refresh (read just before writing a page's difference)."""
    try:
        refresh = stores.segments.get(segment_id).refresh
    except NotFound:
        return False
    return refresh is not None and refresh.job_id == job_id


job_cases.register_kind(KIND, refresh_step)
