"""Segment use cases: create, change, delete, duplicate, refresh as diffs, static members, realtime following."""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.ports import Position, Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.segment_criteria import Criteria, validate_criteria
from chalicelib.domain.segments import Member, MemberEntry, Segment, belongs, list_order
from chalicelib.domain.slugs import SlugTaken, slug_candidates
from chalicelib.domain.values import utcnow

PAGE = 200  # clients examined per step of a refresh; progress is saved after each
NOT_NULL = ("name", "is_active", "is_public", "refresh_frequency")
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
    """A new segment with a unique slug; a dynamic one is filled at once. Only an admin creates a system one."""
    if data.get("is_system") and not as_admin:
        raise Forbidden("only an admin may create a system segment")
    return _create(stores, data, actor=actor, now=now)


def _create(stores: Stores, data: dict[str, Any], *, actor: str | None, now: datetime | None = None,
            members_from: Segment | None = None) -> Segment:
    """A new segment with a unique slug; a dynamic one is filled at once, a copy of a static one gets its members."""
    data = dict(data)
    data["criteria"] = _criteria(stores, data["type"], data.get("criteria"))
    if data["type"] == "static":
        data["refresh_frequency"] = "manual"
    taken = {s.slug for s in stores.segments.all()}
    at = now or utcnow()
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
    return refresh(stores, segment, deadline=api_deadline()) if segment.is_dynamic else segment


def update_segment(stores: Stores, segment_id: str, changes: dict[str, Any], now: datetime | None = None) -> Segment:
    """Write the named fields; new criteria are validated and applied by a refresh at once."""
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
        return current, stores.segments.save(current, updated)

    current, saved = retrying(attempt, "the segment")
    if saved is current:
        return current
    if saved.is_dynamic and saved.is_active and (saved.criteria != current.criteria or not current.is_active):
        return refresh(stores, saved, deadline=api_deadline())
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
    """Recompute a segment's membership in a request (what is left when time runs out, the schedule finishes)."""
    return refresh(stores, stores.segments.get(segment_id), deadline=api_deadline())


def api_deadline(seconds: float = 20.0) -> Deadline:
    """A request stops refreshing before API Gateway's 29 s; the schedule finishes what is left."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end


def refresh(stores: Stores, segment: Segment, *, deadline: Deadline | None = None,
            now: datetime | None = None) -> Segment:
    """Recompute a dynamic segment's members as diffs, page by page in client-id order.

    Progress is saved after each page, so a run cut off (deadline, Lambda timeout) resumes where it stopped;
    a page done twice writes nothing new. Archived clients never belong. A static segment is only recounted.
    """
    if segment.is_static:
        return _recount(stores, segment)  # hand-picked members: only the count is recalculated
    criteria = validate_criteria(segment.criteria, stores.settings.custom_fields())
    now = now or utcnow()
    for client_ids, after, upto in _live_pages(stores, segment.refresh_after):
        _apply_page(stores, segment, criteria, client_ids, after, upto, now)
        if upto is None:
            break
        stores.segments.set_progress(segment.id, upto)
        if deadline is not None and deadline():
            return segment.model_copy(update={"refresh_after": upto})
    count = stores.segments.count_members(segment.id)
    stores.segments.finish_refresh(segment.id, count, now)
    return segment.model_copy(update={"client_count": count, "last_refreshed_at": now, "refresh_after": None})


def _live_pages(stores: Stores, after: str | None) -> Iterator[tuple[list[str], str | None, str | None]]:
    """The non-archived clients' ids in id order from `after`, PAGE at a time: (ids, after, upto) with `upto`
    the page's last id, None on the last page (which then covers every id after `after`)."""
    def read(after: str | None) -> list[str]:
        return list(itertools.islice(stores.clients.client_ids(("live", "1"), after=after), PAGE))

    ids = read(after)
    while len(ids) == PAGE:
        yield ids, after, ids[-1]
        after = ids[-1]
        ids = read(after)
    yield ids, after, None


def _apply_page(stores: Stores, segment: Segment, criteria: Criteria, client_ids: list[str], after: str | None,
                upto: str | None, now: datetime) -> None:
    clients = stores.clients.get_many(client_ids)
    wanted = {cid: c for cid, c in clients.items() if belongs(criteria, c)}
    current = set(stores.segments.member_ids(segment.id, after=after, upto=upto))
    stores.segments.add_members(segment.id, [wanted[cid] for cid in sorted(wanted.keys() - current)],
                                None, "automatic", now)
    stores.segments.remove_members(segment.id, sorted(current - wanted.keys()))


def refresh_due(stores: Stores, *, deadline: Deadline | None = None, now: datetime | None = None) -> tuple[int, int]:
    """Refresh the tenant's due segments: (finished, left unfinished for the next run)."""
    finished = unfinished = 0
    now = now or utcnow()
    for segment in stores.segments.all():
        if not segment.needs_refresh(now):
            continue
        if deadline is not None and deadline():
            unfinished += 1
            continue
        result = refresh(stores, segment, deadline=deadline, now=now)
        if result.refresh_after is None:
            finished += 1
        else:
            unfinished += 1
    return finished, unfinished


def follow_client(stores: Stores, client_id: str) -> None:
    """After a client changes: realtime segments take it in or let it go, and its member entries follow it."""
    client = stores.clients.get(client_id)
    member_of = set(stores.segments.segment_ids_of(client_id))
    defs = None
    for segment in stores.segments.all():
        if not (segment.is_dynamic and segment.is_active and segment.refresh_frequency == "realtime"):
            continue
        if segment.last_refreshed_at is None:
            continue  # its first refresh is still to come and will include this client
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
