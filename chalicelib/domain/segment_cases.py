"""Segment use cases: create, change, delete, duplicate, refresh (a job), static members, realtime following."""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain import segment_refresh
from chalicelib.domain.clients import Client
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.ports import Position, Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.segment_criteria import validate_criteria
from chalicelib.domain.segments import Member, MemberEntry, Segment, belongs, list_order
from chalicelib.domain.slugs import SlugTaken, slug_candidates
from chalicelib.domain.values import utcnow

PAGE = 200  # members copied per page of a duplicate
NOT_NULL = ("name", "is_active", "is_public", "refresh_frequency")
REFRESH_NOW_SECONDS = 5.0  # `POST .../refresh` refreshes in the request this long, then leaves the rest to the job
Deadline = Callable[[], bool]


def _criteria(stores: Stores, segment_type: str, raw: Any) -> dict[str, Any] | None:
    """Dynamic segments need valid criteria; static ones take none."""
    if segment_type == "static":
        if raw is not None:
            raise ValidationFailed.field("criteria", "only dynamic segments have criteria")
        return None
    if raw is None:
        raise ValidationFailed.field("criteria", "is required for a dynamic segment")
    return validate_criteria(raw, stores.settings.custom_fields()).model_dump(mode="json")


def list_segments(stores: Stores) -> list[Segment]:
    """The tenant's segments in list order (by name)."""
    return sorted(stores.segments.all(), key=list_order)


def get_segment(stores: Stores, segment_id: str) -> Segment:
    return stores.segments.get(segment_id)  # NotFound when absent or deleted


def segments_of_client(stores: Stores, client_id: str) -> list[Segment]:
    """The segments a client belongs to, in list order (404 for an unknown client)."""
    stores.clients.get(client_id)
    return sorted(stores.segments.get_many(stores.segments.segment_ids_of(client_id)), key=list_order)


def create_segment(stores: Stores, data: dict[str, Any], *, actor: str | None, as_admin: bool = False,
                   now: datetime | None = None) -> Segment:
    """A new segment with a unique slug; a dynamic one starts its refresh job (one page in the request, the rest
    on the worker: the answer says `refreshing`). Only an admin creates a system one."""
    if data.get("is_system") and not as_admin:
        raise Forbidden("only an admin may create a system segment")
    return _create(stores, data, actor=actor, now=now)


def _create(stores: Stores, data: dict[str, Any], *, actor: str | None, now: datetime | None = None,
            members_from: Segment | None = None) -> Segment:
    """A new segment with a unique slug; a dynamic one starts its refresh, a copy of a static one gets its members."""
    data = dict(data)
    data["criteria"] = _criteria(stores, data["type"], data.get("criteria"))
    if data["type"] == "static":
        data["refresh_frequency"] = "manual"
    taken = {s.slug for s in stores.segments.all()}
    at = now or utcnow()
    if data["type"] == "dynamic":
        data["refresh"] = segment_refresh.queued(segment_refresh.new_job_id(at))  # named with the segment
    for slug in itertools.islice((s for s in slug_candidates(data["name"]) if s not in taken), 20):
        segment = Segment(**data, id=str(ULID.from_datetime(at)), tenant_id=stores.tenant_id, slug=slug,
                          created_by=actor, created_at=at, updated_at=at)
        try:
            segment = stores.segments.create(segment)
            break
        except SlugTaken:
            continue
    else:
        raise Conflict("conflict", "could not find a free slug; try another name")
    if members_from is not None:
        _copy_members(stores, members_from, segment, actor, at)
        return _recount(stores, segment)
    if segment.is_dynamic:
        return segment_refresh.start(stores, segment, at=at, run=segment_refresh.one_page)
    return segment


def update_segment(stores: Stores, segment_id: str, changes: dict[str, Any], now: datetime | None = None) -> Segment:
    """Write the named fields; new criteria (or an activation) start a refresh job, named in the same write, so an
    earlier refresh still running stops; one page of it runs in the request (as for a create)."""
    job_id = segment_refresh.new_job_id(now)

    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed.field(key, "may not be null")

    def attempt() -> tuple[Segment, Segment]:
        current = stores.segments.get(segment_id)
        wanted = dict(changes)
        if "criteria" in wanted:
            wanted["criteria"] = _criteria(stores, current.type, wanted["criteria"])
        if current.is_static and wanted.get("refresh_frequency", "manual") != "manual":
            raise ValidationFailed.field("refresh_frequency", "static segments are never refreshed")
        updated = current.model_copy(update={**wanted, "updated_at": now or utcnow()})
        if updated.model_copy(update={"updated_at": current.updated_at}) == current:
            return current, current
        if updated.is_dynamic and updated.is_active and (updated.criteria != current.criteria or
                                                         not current.is_active):
            updated = updated.model_copy(update={"refresh": segment_refresh.queued(job_id)})
        return current, stores.segments.save(current, updated)

    current, saved = retrying(attempt, "the segment")
    if saved.refresh is not None and saved.refresh.job_id == job_id:
        return segment_refresh.start(stores, saved, at=saved.updated_at, run=segment_refresh.one_page)
    return saved


def delete_segment(stores: Stores, segment_id: str, now: datetime | None = None) -> None:
    """Soft delete; system segments are deactivated instead. Members stay stored with the deleted segment."""
    def attempt() -> None:
        current = stores.segments.get(segment_id)
        if current.is_system:
            raise Conflict("system_segment", "system segments cannot be deleted; deactivate it instead")
        stores.segments.save(current, current.model_copy(update={"deleted_at": now or utcnow()}), release_slug=True)
    retrying(attempt, "the segment")


def duplicate_segment(stores: Stores, segment_id: str, name: str, *, actor: str | None) -> Segment:
    """A copy under a new name: criteria and looks, and for a static segment its members."""
    source = stores.segments.get(segment_id)
    data = source.model_dump(include={"description", "type", "criteria", "color", "icon", "is_active", "is_public",
                                      "refresh_frequency"})
    return _create(stores, {**data, "name": name}, actor=actor, members_from=source if source.is_static else None)


def _copy_members(stores: Stores, source: Segment, target: Segment, actor: str | None, at: datetime) -> None:
    ids = stores.segments.member_ids(source.id)
    while page := list(itertools.islice(ids, PAGE)):
        clients = stores.clients.get_many(page)
        stores.segments.add_members(target.id, [clients[cid] for cid in page if cid in clients], actor, "manual", at)


# --- refresh -------------------------------------------------------------------------------------

def refresh_now(stores: Stores, segment_id: str) -> Segment:
    """Recompute a segment's membership: a refresh job run in the request for REFRESH_NOW_SECONDS, the rest on the
    worker (the answer then says `refreshing`). A static segment is only recounted."""
    segment = stores.segments.get(segment_id)
    if segment.is_static:
        return _recount(stores, segment)  # hand-picked members: only the count is recalculated
    validate_criteria(segment.criteria, stores.settings.custom_fields())  # a 422 here, not a failed job
    return segment_refresh.take_over(stores, segment, at=utcnow(), run=api_deadline(REFRESH_NOW_SECONDS))


def api_deadline(seconds: float = 20.0) -> Deadline:
    """A request stops before API Gateway's 29 s; the worker finishes what is left."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end


def follow_client(stores: Stores, client_id: str, client: Client | None = None) -> None:
    """After a client changes: realtime segments take it in or let it go, and its member entries follow it.

    `client`: the client as just read or saved (a stream batch's rescore answers it), else it is read here.
    """
    client = client if client is not None else stores.clients.get(client_id)
    member_of = set(stores.segments.segment_ids_of(client_id))
    defs = None
    for segment in stores.segments.all():
        if not (segment.is_dynamic and segment.is_active and segment.refresh_frequency == "realtime"):
            continue
        if segment.last_refreshed_at is None and segment.refresh is None:
            continue  # its first refresh is still to come and will include this client
        # A first refresh under way may have passed this client already: follow it from now on.
        defs = stores.settings.custom_fields() if defs is None else defs
        inside = belongs(validate_criteria(segment.criteria, defs), client)
        if inside and segment.id not in member_of:
            stores.segments.add_members(segment.id, [client], None, "automatic", utcnow())
        elif not inside and segment.id in member_of:
            stores.segments.remove_members(segment.id, [client_id])
            member_of.discard(segment.id)
    for segment_id in member_of:
        stores.segments.refresh_member(segment_id, client)


# --- static members ------------------------------------------------------------------------------

def add_member(stores: Stores, segment_id: str, client_id: str, *, actor: str | None) -> tuple[Member, bool]:
    """Add a client by hand to a static segment; a duplicate is skipped (False) and answered as it is."""
    segment = stores.segments.get(segment_id)
    if segment.is_dynamic:
        raise Conflict("dynamic_segment", "members of a dynamic segment come from its criteria")
    try:
        client = stores.clients.get(client_id)
    except NotFound:
        raise ValidationFailed.field("client_id", "is not a client of this tenant") from None
    if client.is_archived:
        raise ValidationFailed.field("client_id", "is archived; restore it first")
    added = stores.segments.add_member_once(segment.id, client, actor, "manual", utcnow())
    if added:
        _recount(stores, segment)
    return member_of(stores, segment.id, client_id), added


def remove_member(stores: Stores, segment_id: str, client_id: str) -> None:
    segment = stores.segments.get(segment_id)
    if segment.is_dynamic:
        raise Conflict("dynamic_segment", "members of a dynamic segment come from its criteria")
    if stores.segments.member(segment.id, client_id) is None:
        raise NotFound(f"client {client_id} is not a member of segment {segment_id}")
    stores.segments.remove_members(segment.id, [client_id])
    _recount(stores, segment)


def member_of(stores: Stores, segment_id: str, client_id: str) -> Member:
    entry = stores.segments.member(segment_id, client_id)
    if entry is None:
        raise NotFound(f"client {client_id} is not a member of segment {segment_id}")
    return _members(stores, [entry])[0]


def member_page(stores: Stores, segment_id: str, limit: int, after: Position | None
                ) -> tuple[list[Member], Position | None]:
    """A page of the segment's non-archived members by client name, and where the next page starts."""
    stores.segments.get(segment_id)  # 404 for an unknown segment
    entries, position = stores.segments.member_page(segment_id, limit, after)
    return _members(stores, entries), position


def _members(stores: Stores, entries: list[MemberEntry]) -> list[Member]:
    """Member answers for stored memberships: the client's current name with how and when it was added."""
    clients = stores.clients.get_many([e.client_id for e in entries])
    return [Member(client_id=e.client_id, name=clients[e.client_id].name, added_at=e.added_at,
                   added_by=e.added_by, added_method=e.added_method or "automatic")
            for e in entries if e.client_id in clients and e.added_at is not None]


def recount(stores: Stores, segment_id: str) -> int:
    """`client_count` from the members' entries (non-archived clients); exact whatever was replayed."""
    count = stores.segments.count_members(segment_id)
    stores.segments.set_client_count(segment_id, count)
    return count


def _recount(stores: Stores, segment: Segment) -> Segment:
    return segment.model_copy(update={"client_count": recount(stores, segment.id)})
