"""Client imports: rows checked like POST /v1/clients, duplicates skipped, clients created in batches (in the
request up to SYNC_ROWS rows, else as a job), and the revert that archives what nobody changed since."""
from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ulid import ULID

from chalicelib.domain import client_cases, job_cases
from chalicelib.domain.client_import import ParsedFile, read_csv
from chalicelib.domain.clients import Client
from chalicelib.domain.errors import Conflict, NotFound, StaleVersion, VersionConflict
from chalicelib.domain.import_rows import Rules, Validator, run_rows
from chalicelib.domain.jobs import Job, StepResult, after_failure, after_step
from chalicelib.domain.ports import Stores
from chalicelib.domain.values import iso, utcnow

IMPORT, REVERT, REINDEX = "import", "revert_import", "reindex_clients"  # job kinds
SYNC_ROWS = 1_000         # data rows answered in the request; a larger file (not a dry run) runs as a job
CHUNK_ROWS = 500          # rows per job step: its progress is saved after each
MAX_LISTED = 500          # duplicates kept on an import's job (errors: the runner keeps 1,000); an item holds 400 KB
MAX_POSSIBLE = 200        # rows created that may be duplicates, kept on the job beside them
REVERT_SECONDS = 20.0     # a revert request archives this long, then goes on as a job
MEMBERS_PAGE = 100        # clients per revert step
REINDEX_PAGE = 300        # clients per reindex step
CUT_OFF = timedelta(minutes=15)  # an import answered in its request that has not finished by then was cut off


@dataclass
class ImportMember:
    """A client an import created: the row it came from and the version the import wrote."""

    client_id: str
    fingerprint: str | None  # kept for a row without email and VAT number only
    line: int
    version: int
    reverted: str | None = None  # what a revert settled ("archived", "already archived"); None: not yet


# --- starting an import ----------------------------------------------------------------------------------------

def _new_id() -> str:
    return str(ULID.from_datetime(utcnow()))


def _described(parsed: ParsedFile) -> dict[str, Any]:
    return {"rows": len(parsed.rows), "encoding": parsed.encoding, "delimiter": parsed.delimiter,
            "columns": parsed.columns, "unknown_columns": parsed.unknown_columns,
            "ignored_columns": parsed.ignored_columns}


def import_file(stores: Stores, raw: bytes, *, dry_run: bool, validate: Validator,
                actor: str | None) -> tuple[int, dict[str, Any]]:
    """Import a CSV file of clients: (200, the result) for a dry run or a file of at most SYNC_ROWS data rows;
    (202, the import job) for a larger one, whose raw file is kept for the job. CsvProblem (400) or TooManyRows
    (413) when the file as a whole cannot be read; nothing is written then."""
    defs = stores.settings.custom_fields()
    parsed = read_csv(raw, {d.key: d.type for d in defs})
    about = _described(parsed)
    if not dry_run and len(parsed.rows) > SYNC_ROWS:
        import_id = _new_id()
        stores.imports.put_file(import_id, raw)
        job = job_cases.start_job(stores, IMPORT, {"actor": actor, **about}, job_id=import_id,
                                  total=len(parsed.rows))
        return 202, import_view(job)
    rules = Rules.read(stores, validate, actor, defs)
    if dry_run:
        out = run_rows(stores, rules, parsed.rows, import_id=None, dry_run=True)
        return 200, {"id": None, "dry_run": True, "status": "done", **about, "processed": len(parsed.rows),
                     "created": out.created, "skipped_duplicates": out.skipped, "errors": out.errors,
                     "duplicates": out.duplicates, "possible_duplicates": out.possible}
    # Recorded first (never enqueued: this request does the work), finished when done: listed and revertable.
    job = job_cases.start_job(stores, IMPORT, {"actor": actor, "sync": True, **about}, job_id=_new_id(),
                              total=len(parsed.rows), enqueue=False)
    try:
        out = run_rows(stores, rules, parsed.rows, import_id=job.id, dry_run=False)
    except Exception as exc:
        stores.jobs.save(after_failure(job, f"{type(exc).__name__}: {exc}", utcnow(), last=True), step=job.step)
        raise
    finished = after_step(job, StepResult(
        state={"offset": len(parsed.rows), "duplicates": out.duplicates[:MAX_LISTED],
               "possible_duplicates": out.possible[:MAX_POSSIBLE]}, processed=len(parsed.rows),
        result={"created": out.created, "skipped_duplicates": out.skipped}, errors=out.errors, done=True), utcnow())
    stores.jobs.save(finished, step=job.step)
    return 200, {**import_view(finished), "errors": out.errors, "duplicates": out.duplicates,
                 "possible_duplicates": out.possible}


# --- the import job ------------------------------------------------------------------------------------------------

_parsed: dict[str, ParsedFile] = {}  # the file of the job this process ran last: its next step reads no file


def _file_of(stores: Stores, job: Job) -> ParsedFile:
    key = f"{job.tenant_id}/{job.id}"
    if key not in _parsed:
        raw = stores.imports.get_file(job.id)
        parsed = read_csv(raw, {d.key: d.type for d in stores.settings.custom_fields()})
        _parsed.clear()
        _parsed[key] = parsed
    return _parsed[key]


def import_step(stores: Stores, job: Job, deadline: Callable[[], bool], *, validate: Validator) -> StepResult:
    """One chunk of CHUNK_ROWS rows from where the last saved step ended. Run again after a cut-off, it finds the
    rows it created already (their clients' email or VAT number, else the rows' fingerprints, and the import's
    member items) and counts them as created: nothing is created twice."""
    parsed = _file_of(stores, job)
    offset = int(job.state.get("offset", 0))
    rows = parsed.rows[offset:offset + CHUNK_ROWS]
    out = run_rows(stores, Rules.read(stores, validate, job.params.get("actor")), rows, import_id=job.id,
                   dry_run=False)
    end = offset + len(rows)
    if end >= len(parsed.rows):
        _parsed.clear()
    listed = (list(job.state.get("duplicates", [])) + out.duplicates)[:MAX_LISTED]
    possible = (list(job.state.get("possible_duplicates", [])) + out.possible)[:MAX_POSSIBLE]
    return StepResult(state={"offset": end, "duplicates": listed, "possible_duplicates": possible},
                      processed=len(rows),
                      result={"created": out.created, "skipped_duplicates": out.skipped}, errors=out.errors,
                      done=end >= len(parsed.rows))


def _status(job: Job) -> str:
    if job.params.get("sync") and job.status in ("queued", "running") and utcnow() - job.created_at > CUT_OFF:
        return "failed"  # the request running it was cut off
    return job.status


def import_view(job: Job) -> dict[str, Any]:
    """An import as GET /v1/imports/{id} answers it."""
    params = job.params
    return {
        "id": job.id, "status": _status(job), "dry_run": False, "rows": job.total or 0, "processed": job.processed,
        "created": int(job.result.get("created", 0)),
        "skipped_duplicates": int(job.result.get("skipped_duplicates", 0)),
        "errors": job.errors, "errors_dropped": int(job.result.get("errors_dropped", 0)),
        "duplicates": job.state.get("duplicates", []),
        "possible_duplicates": job.state.get("possible_duplicates", []), "encoding": params.get("encoding"),
        "delimiter": params.get("delimiter"), "columns": params.get("columns", {}),
        "unknown_columns": params.get("unknown_columns", []), "ignored_columns": params.get("ignored_columns", []),
        "created_by": params.get("actor"), "error": job.error, "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at) if job.finished_at else None,
    }


def get_import(stores: Stores, import_id: str) -> dict[str, Any]:
    """The import and its latest revert (None before any)."""
    view = import_view(job_cases.get_job(stores, IMPORT, import_id))
    revert_id = stores.imports.latest_revert(import_id)
    revert = None
    if revert_id:
        try:
            revert = revert_view(job_cases.get_job(stores, REVERT, revert_id))
        except NotFound:
            pass
    return {**view, "revert": revert}


def list_imports(stores: Stores, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    jobs, next_after = job_cases.list_jobs(stores, IMPORT, limit, after)
    return [import_view(job) for job in jobs], next_after


# --- revert ----------------------------------------------------------------------------------------------------------

def revert_import(stores: Stores, import_id: str, *, actor: str | None,
                  seconds: float | None = None) -> tuple[int, dict[str, Any]]:
    """Archive the clients the import created that nobody changed since (through archive_client: counters,
    timeline and stream as for one archive). (200, the outcome) when it finished in `seconds`, else (202, the
    outcome so far) while a job of kind REVERT goes on. 409 while the import or another revert of it runs."""
    imported = job_cases.get_job(stores, IMPORT, import_id)
    if _status(imported) in ("queued", "running"):
        raise Conflict("import_running", f"import {import_id} is still {imported.status}: revert it once it is done")
    previous = stores.imports.latest_revert(import_id)
    if previous:
        try:
            earlier = job_cases.get_job(stores, REVERT, previous)
        except NotFound:
            earlier = None
        if earlier is not None and earlier.status in ("queued", "running"):
            raise Conflict("revert_running", f"a revert of import {import_id} is running: see GET /v1/imports/"
                                             f"{import_id}")
    revert_id = _new_id()
    try:
        stores.imports.claim_revert(import_id, revert_id, previous)
    except VersionConflict:
        raise Conflict("revert_running", f"a revert of import {import_id} started meanwhile") from None
    job = job_cases.start_job(stores, REVERT, {"import_id": import_id, "actor": actor}, job_id=revert_id,
                              total=int(imported.result.get("created", 0)), enqueue=False)
    end = time.monotonic() + (REVERT_SECONDS if seconds is None else seconds)
    job = job_cases.run_inline(stores, job, lambda: time.monotonic() > end)
    return (200 if job.finished else 202), revert_view(job)


def revert_view(job: Job) -> dict[str, Any]:
    remaining = 0 if job.finished else max(0, (job.total or 0) - job.processed)
    return {"id": job.id, "import_id": job.params.get("import_id"), "status": job.status,
            "archived": int(job.result.get("archived", 0)), "kept": job.errors, "remaining": remaining,
            "created_at": iso(job.created_at), "finished_at": iso(job.finished_at) if job.finished_at else None}


def _revert_one(stores: Stores, job: Job, member: ImportMember, client: Client | None) -> str | None:
    """Archive one member's client if unchanged: None when archived, else why it was kept."""
    if client is None:
        return "no longer exists"
    if client.is_archived:
        ours = client.version == member.version + 1 and client.archived_at and client.archived_at >= job.created_at
        stores.imports.settle(job.params["import_id"], member, "archived" if ours else "already archived")
        return None if ours else "already archived"  # ours: this revert's step, cut off before it settled
    if client.version != member.version:
        return "changed since the import"
    try:
        client_cases.archive_client(stores, member.client_id, expected_version=member.version)
    except StaleVersion:
        return "changed since the import"
    stores.imports.settle(job.params["import_id"], member, "archived")
    return None


def revert_step(stores: Stores, job: Job, deadline: Callable[[], bool]) -> StepResult:
    """A page of the import's members, in client-id order from where the last saved step ended; it stops early
    at the deadline (the request's revert time, or the worker's), saving where it got to."""
    after = job.state.get("after")
    members = stores.imports.members(job.params["import_id"], after, MEMBERS_PAGE)
    current = stores.clients.get_many([m.client_id for m in members], consistent=True) if members else {}
    archived, kept, handled = 0, [], 0
    for member in members:
        if handled and deadline():
            break
        handled += 1
        if member.reverted:
            continue  # settled by an earlier revert
        reason = _revert_one(stores, job, member, current.get(member.client_id))
        if reason is None:
            archived += 1
        else:
            kept.append({"client_id": member.client_id, "reason": reason})
    return StepResult(state={"after": members[handled - 1].client_id if handled else after}, processed=handled,
                      result={"archived": archived, "kept_count": len(kept)}, errors=kept,
                      done=handled == len(members) and len(members) < MEMBERS_PAGE)


# --- lookup keys of clients written before they existed ------------------------------------------------------------

def reindex_step(stores: Stores, job: Job, deadline: Callable[[], bool]) -> StepResult:
    """One page of the tenant's live clients: their lookup keys written (an operator runs the job once after
    deploying lookup keys; running it again changes nothing)."""
    after = job.state.get("after")
    ids = list(itertools.islice(stores.clients.client_ids(("live", "1"), after=after, page_size=REINDEX_PAGE),
                                REINDEX_PAGE))
    indexed = stores.clients.index_lookups(ids) if ids else 0
    return StepResult(state={"after": ids[-1] if ids else after}, processed=len(ids), result={"indexed": indexed},
                      done=len(ids) < REINDEX_PAGE)


def register(validate: Validator) -> None:
    """Make the import job kinds runnable; `validate` checks a row as POST /v1/clients checks its body."""
    job_cases.register_kind(IMPORT, functools.partial(import_step, validate=validate))
    job_cases.register_kind(REVERT, revert_step)
    job_cases.register_kind(REINDEX, reindex_step)


def start_reindex(stores: Stores) -> Job:
    """The reindex job of a tenant (kind REINDEX)."""
    return job_cases.start_job(stores, REINDEX, {})

