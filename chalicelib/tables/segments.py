"""Segment repository: segments in one tenant partition; each member is a facet entry plus a link on its client."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.operand import Path
from pynamodb.transactions import TransactWrite

from chalicelib.domain.clients import Client, Facet
from chalicelib.domain.errors import NotFound
from chalicelib.domain.ports import Position
from chalicelib.domain.segments import MemberEntry, RefreshProgress, Segment
from chalicelib.domain.slugs import SlugTaken
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.clients import facet_entry
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.items import FacetEntry
from chalicelib.tables.paging import one_page
from chalicelib.tables.records import as_read, fields_of, record_from
from chalicelib.tables.transactions import commit, commit_versioned
from chalicelib.tables.work_items import SegmentItem, SegmentLinkItem, SlugItem

MEMBERS_PER_TX = 40  # two items per member; a transaction holds at most 100
DERIVED = ("client_count", "last_refreshed_at", "refresh_after")  # written by refreshes and recounts (+ refresh)
CANDIDATES_PER_QUERY = 200  # facet entries per Query page of a refresh's candidates


def _doc(progress: RefreshProgress | None) -> dict | None:
    """A refresh's progress as stored (JSON text, keys sorted): also what a condition on it compares."""
    return progress.model_dump(mode="json") if progress is not None else None


def _marker(job_id: str) -> str:
    """The part of a stored `refresh` naming its job: the condition that a refresh is still the segment's own."""
    return f'"job_id":"{job_id}"'


def _item(segment: Segment) -> SegmentItem:
    data = fields_of(segment)
    data["refresh"] = _doc(segment.refresh)
    if not segment.version:
        del data["version"]
    return SegmentItem(keys.segments_pk(segment.tenant_id), keys.segment_sk(segment.id), **data)


def _segment(item: SegmentItem) -> Segment:
    return record_from(Segment, item)


def _entry(item: FacetEntry) -> MemberEntry:
    return record_from(MemberEntry, item)


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class SegmentRepository:
    def __init__(self, tenant_id: str, memo: bool = False):
        """With `memo`, the list of segments is read once for the life of this repository (a stream batch's) and
        read again after any write to a segment through it; requests read afresh."""
        configure()
        self.tenant_id = tenant_id
        self.pk = keys.segments_pk(tenant_id)
        self._memo = memo
        self._all: list[Segment] | None = None

    # --- segments --------------------------------------------------------------------------------
    def all(self) -> list[Segment]:
        """The tenant's live segments, in one Query."""
        if self._all is not None:
            return list(self._all)
        with storage_errors():
            found = [s for i in SegmentItem.query(self.pk, SegmentItem.sk.startswith(keys.SEGMENT_PREFIX),
                                                  consistent_read=True, page_size=500)
                     if (s := _segment(i)).deleted_at is None]
        if self._memo:
            self._all = found
        return list(found)

    def get(self, segment_id: str) -> Segment:
        with storage_errors():
            try:
                segment = _segment(SegmentItem.get(self.pk, keys.segment_sk(segment_id), consistent_read=True))
            except SegmentItem.DoesNotExist:
                segment = None
        if segment is None or segment.deleted_at is not None:
            raise NotFound(f"segment {segment_id} not found")
        return segment

    def get_many(self, segment_ids: Iterable[str]) -> list[Segment]:
        wanted = [(self.pk, keys.segment_sk(sid)) for sid in dict.fromkeys(segment_ids)]
        with storage_errors():
            found = [_segment(i) for i in SegmentItem.batch_get(wanted)] if wanted else []
        return [s for s in found if s.deleted_at is None]

    def create(self, segment: Segment) -> Segment:
        self._all = None

        def build(tx: TransactWrite) -> None:
            tx.save(_item(segment), condition=SegmentItem.pk.does_not_exist())
            tx.save(self._slug(segment), condition=SlugItem.pk.does_not_exist())

        try:
            commit(build)
        except TransactWriteError as exc:
            if reason_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                raise SlugTaken() from exc
            raise
        return segment.model_copy(update={"version": 1})

    def save(self, old: Segment, new: Segment, release_slug: bool = False) -> Segment:
        """Write `new` if nobody changed the segment since `old` was read (else VersionConflict)."""
        self._all = None
        item = _item(new.model_copy(update={"version": old.version}))
        refresh = _doc(old.refresh)
        unchanged = as_read(SegmentItem, old, DERIVED) & (SegmentItem.refresh.does_not_exist() if refresh is None
                                                          else SegmentItem.refresh == refresh)

        def build(tx: TransactWrite) -> None:
            tx.save(item, condition=unchanged)
            if release_slug:
                tx.delete(self._slug(old))

        commit_versioned(build, "the segment was changed by someone else; read it again")
        return new.model_copy(update={"version": old.version + 1})

    def set_refresh(self, segment_id: str, progress: RefreshProgress, job_id: str | None = None,
                    count: int | None = None) -> bool:
        """Write a refresh's progress, and the count so far (no version bump, as for every derived figure): with
        `job_id`, only while the stored one is that job's (False when another refresh took over, or the segment
        is deleted); without, the refresh takes the segment over."""
        actions = [SegmentItem.refresh.set(_doc(progress))]
        if count is not None:
            actions.append(SegmentItem.client_count.set(count))
        return self._update(segment_id, actions, job_id)

    def finish_refresh(self, segment_id: str, count: int, at: datetime, progress: RefreshProgress | None = None
                       ) -> bool:
        """The count and time of a finished refresh, with its final progress (only while it is the segment's)."""
        actions = [SegmentItem.client_count.set(count), SegmentItem.last_refreshed_at.set(at),
                   SegmentItem.refresh_after.remove()]
        if progress is None:
            return self._update(segment_id, actions)
        return self._update(segment_id, [*actions, SegmentItem.refresh.set(_doc(progress))], progress.job_id)

    def set_client_count(self, segment_id: str, count: int) -> None:
        self._update(segment_id, [SegmentItem.client_count.set(count)])

    def _update(self, segment_id: str, actions: list, job_id: str | None = None) -> bool:
        self._all = None  # the remembered list is read again after any write to a segment
        condition = SegmentItem.pk.exists() & SegmentItem.deleted_at.does_not_exist()
        if job_id is not None:
            # The raw text, not the attribute: its serialiser would JSON-quote the marker.
            condition &= Path(SegmentItem.refresh.attr_name).contains(_marker(job_id))
        with storage_errors():
            try:
                TableItem._get_connection().update_item(self.pk, keys.segment_sk(segment_id), actions=actions,
                                                        condition=condition)
            except UpdateError as exc:  # a deleted segment keeps its last figures
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    def _slug(self, segment: Segment) -> SlugItem:
        return SlugItem(keys.slug_pk(self.tenant_id, "segment", segment.slug), keys.UNIQUE_SK, owner_id=segment.id)

    # --- members ---------------------------------------------------------------------------------
    def _member(self, segment_id: str, client: Client, by: str | None, method: str, at: datetime) -> FacetEntry:
        entry = facet_entry(client, ("segment", segment_id))
        entry.added_at, entry.added_by, entry.added_method = at, by, method
        return entry

    def _link(self, segment_id: str, client_id: str) -> SegmentLinkItem:
        return SegmentLinkItem(keys.client_pk(self.tenant_id, client_id), keys.segment_link_sk(segment_id),
                               segment_id=segment_id)

    def add_members(self, segment_id: str, clients: list[Client], by: str | None, method: str,
                    at: datetime) -> None:
        """Members and their links, written together (a refresh's additions)."""
        for chunk in _chunks(clients, MEMBERS_PER_TX):
            def build(tx: TransactWrite, chunk=chunk) -> None:
                for client in chunk:
                    tx.save(self._member(segment_id, client, by, method, at))
                    tx.save(self._link(segment_id, client.id))
            commit(build)

    def add_member_once(self, segment_id: str, client: Client, by: str | None, method: str, at: datetime) -> bool:
        """Add one member unless it is one already; False for a duplicate."""
        def build(tx: TransactWrite) -> None:
            tx.save(self._link(segment_id, client.id), condition=SegmentLinkItem.pk.does_not_exist())
            tx.save(self._member(segment_id, client, by, method, at))

        try:
            commit(build)
        except TransactWriteError as exc:
            if reason_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def remove_members(self, segment_id: str, client_ids: list[str]) -> None:
        pk = self._members_pk(segment_id)
        for chunk in _chunks(client_ids, MEMBERS_PER_TX):
            def build(tx: TransactWrite, chunk=chunk) -> None:
                for client_id in chunk:
                    tx.delete(FacetEntry(pk, client_id))
                    tx.delete(self._link(segment_id, client_id))
            commit(build)

    def member(self, segment_id: str, client_id: str) -> MemberEntry | None:
        with storage_errors():
            try:
                return _entry(FacetEntry.get(self._members_pk(segment_id), client_id, consistent_read=True))
            except FacetEntry.DoesNotExist:
                return None

    def member_page(self, segment_id: str, limit: int, after: Position | None
                    ) -> tuple[list[MemberEntry], Position | None]:
        """Non-archived members by client name, and where the next page starts."""
        live = FacetEntry.live == True  # noqa: E712 (a PynamoDB condition)
        entries, position = one_page(FacetEntry.by_name.query(self._members_pk(segment_id), filter_condition=live,
                                                              last_evaluated_key=after, page_size=100),
                                     limit, ("pk", "sk", "s_name"))
        return [_entry(e) for e in entries], position

    def member_ids(self, segment_id: str, after: str | None = None, upto: str | None = None) -> Iterator[str]:
        """The members' client ids in id order (archived ones too), after `after` and up to `upto` (both optional)."""
        low = after or "0"  # counter items ("#COUNT#n") sort below every client id
        condition = FacetEntry.sk.between(low, upto) if upto else FacetEntry.sk >= low
        with storage_errors():
            for entry in FacetEntry.query(self._members_pk(segment_id), condition, consistent_read=True,
                                          page_size=200):
                if entry.sk != after:
                    yield entry.client_id

    def candidates(self, facet: Facet, after: str | None = None) -> Iterator[tuple[str, bool]]:
        """(client id, live) of a facet's entries in id order after `after`: a refresh's candidates, read from the
        clients' facet entries (archived ones too, so that a page's work is bounded by the entries it reads)."""
        condition = FacetEntry.sk > after if after else FacetEntry.sk >= "0"  # "#COUNT#n" items sort below ids
        with storage_errors():
            for entry in FacetEntry.query(keys.facet_pk(self.tenant_id, *facet), condition, consistent_read=True,
                                          page_size=CANDIDATES_PER_QUERY):
                yield entry.client_id, bool(entry.live)

    def count_members(self, segment_id: str) -> int:
        """Non-archived members: a consistent COUNT over the segment's member partition."""
        with storage_errors():
            return FacetEntry.count(self._members_pk(segment_id), consistent_read=True,
                                    filter_condition=FacetEntry.live == True)  # noqa: E712

    def _members_pk(self, segment_id: str) -> str:
        return keys.facet_pk(self.tenant_id, "segment", segment_id)

    def segment_ids_of(self, client_id: str) -> list[str]:
        with storage_errors():
            return [link.segment_id for link in SegmentLinkItem.query(
                keys.client_pk(self.tenant_id, client_id), SegmentLinkItem.sk.startswith(keys.SEGMENT_LINK_PREFIX),
                consistent_read=True)]

    def refresh_member(self, segment_id: str, client: Client) -> None:
        """Keep a member entry's name, sort keys and archived flag in step with its client; no-op writes skipped."""
        fresh = facet_entry(client, ("segment", segment_id))
        fields = ("live", "search", "created_at", "s_name", "s_created", "s_health")
        differs = None
        for name in fields:
            clause = getattr(FacetEntry, name) != getattr(fresh, name)
            differs = clause if differs is None else differs | clause
        with storage_errors():
            try:
                TableItem._get_connection().update_item(
                    fresh.pk, fresh.sk, actions=[getattr(FacetEntry, n).set(getattr(fresh, n)) for n in fields],
                    condition=FacetEntry.pk.exists() & differs)
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
