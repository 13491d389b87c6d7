"""Client repository: the client item, its unique number and its facet entries and counters, written together."""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterator

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.client_cases import NumberTaken
from chalicelib.domain.clients import COUNTED_FACETS, Client, FacetRules, facets, iso, name_key, search_text
from chalicelib.domain.errors import NotFound, VersionConflict
from chalicelib.domain.retry import retrying
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.items import ClientItem, ClientNumberItem, FacetCount, FacetEntry
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.idempotency import fence
from chalicelib.tables.records import fields_of, record_from
from chalicelib.tables.tenants import register_tenant

_SORT_INDEX = {"name": "by_name", "created_at": "by_created", "health_score": "by_health"}
_SORT_ATTR = {"name": "s_name", "created_at": "s_created", "health_score": "s_health"}


_tiebreak = itertools.count()


def to_item(client: Client) -> ClientItem:
    data = fields_of(client)
    data["addresses"] = [a.model_dump() for a in client.addresses]
    data["primary_contact"] = client.primary_contact.model_dump() if client.primary_contact else None
    data["churn_probability"] = Decimal(str(client.churn_probability))
    if not client.rev:
        del data["rev"]  # a new item (or one written before revisions): PynamoDB conditions on its absence
    return ClientItem(keys.client_pk(client.tenant_id, client.id), keys.CLIENT_SK, **data)


def from_item(item: ClientItem) -> Client:
    return record_from(Client, item)  # churn_probability: stored as an exact decimal, answered as a number


def facet_entry(client: Client, facet: tuple[str, str]) -> FacetEntry:
    nk = name_key(client.name)
    return FacetEntry(
        keys.facet_pk(client.tenant_id, *facet), client.id, client_id=client.id, live=not client.is_archived,
        search=search_text(client), created_at=iso(client.created_at),
        s_name=keys.name_sort(nk, client.id), s_created=keys.created_sort(iso(client.created_at), client.id),
        s_health=keys.health_sort(client.health_score, nk, client.id))


def _counter_deltas(old: Client | None, new: Client, old_f: set, new_f: set) -> dict[tuple[str, str], int]:
    """+1/-1 per counted facet whose non-archived membership changes."""
    deltas: dict[tuple[str, str], int] = {}
    for facet in old_f | new_f:
        if facet[0] not in COUNTED_FACETS:
            continue
        before = int(facet in old_f and old is not None and not old.is_archived)
        after = int(facet in new_f and not new.is_archived)
        if after != before:
            deltas[facet] = after - before
    return deltas


class TransactionRace(VersionConflict):
    """Another transaction held one of the items (often a shared counter): nothing was written, run it again."""


def commit(build: Callable[[TransactWrite], None]) -> None:
    """Run a transaction, retrying conflicts with other transactions on the shared counters."""
    def attempt() -> None:
        try:
            with storage_errors(), TransactWrite(connection=TableItem._get_connection().connection) as tx:
                build(tx)
                fence(tx)  # inside an Idempotency-Key request: mark the key in the same transaction
        except TransactWriteError as exc:
            if "TransactionConflict" in reason_codes(exc) and "ConditionalCheckFailed" not in reason_codes(exc):
                raise TransactionRace("another transaction held an item") from exc
            raise
    retrying(attempt, "a shared item")


def commit_versioned(build: Callable[[TransactWrite], None], conflict: str) -> None:
    """Commit a transaction whose items are conditional on the versions read; a stale one is a VersionConflict."""
    try:
        commit(build)
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in reason_codes(exc):
            raise VersionConflict(conflict) from exc
        raise


def same_rev(client: Client):
    """The condition that the stored client is still the one read."""
    return ClientItem.rev == client.rev if client.rev else ClientItem.rev.does_not_exist()


@dataclass
class ListQuery:
    """A client list request resolved into facet groups: each group is a union of facet partitions."""

    groups: list[list[tuple[str, str]]]
    sort: str = "name"
    descending: bool = False
    q: str | None = None
    check: Callable[[Client], bool] = lambda c: True
    estimate: Callable[[list[tuple[str, str]]], int] = lambda g: 0
    after: list[str] | None = None  # [sort value, client id] of the last client already answered


class ClientRepository:
    def __init__(self, tenant_id: str, actor: str | None = None):
        configure()
        self.tenant_id = tenant_id
        self.actor = actor  # stamped as `updated_by` on every change a person makes

    # --- reads -----------------------------------------------------------------------------------
    def get(self, client_id: str) -> Client:
        with storage_errors():
            try:
                item = ClientItem.get(keys.client_pk(self.tenant_id, client_id), keys.CLIENT_SK, consistent_read=True)
            except ClientItem.DoesNotExist:
                raise NotFound(f"client {client_id} not found") from None
        return from_item(item)

    def get_many(self, client_ids: list[str]) -> dict[str, Client]:
        wanted = [(keys.client_pk(self.tenant_id, cid), keys.CLIENT_SK) for cid in dict.fromkeys(client_ids)]
        with storage_errors():
            return {item.id: from_item(item) for item in ClientItem.batch_get(wanted)} if wanted else {}

    def counts(self, facet_list: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Non-archived clients per counted facet: the sum of the facet's counter shards."""
        wanted = [(keys.facet_pk(self.tenant_id, *f), keys.count_sk(n))
                  for f in dict.fromkeys(facet_list) for n in range(keys.COUNT_SHARDS)]
        totals: dict[str, int] = {}
        with storage_errors():
            for start in range(0, len(wanted), 100):
                for item in FacetCount.batch_get(wanted[start:start + 100]):
                    totals[item.pk] = totals.get(item.pk, 0) + int(item.n)
        return {f: max(totals.get(keys.facet_pk(self.tenant_id, *f), 0), 0) for f in facet_list}

    def count_created_since(self, facet: tuple[str, str], since: datetime) -> int:
        """Non-archived clients of a facet created at or after `since`: reads only those entries."""
        with storage_errors():
            return FacetEntry.by_created.count(
                keys.facet_pk(self.tenant_id, *facet), FacetEntry.s_created >= iso(since),
                filter_condition=FacetEntry.live == True)  # noqa: E712 (a PynamoDB condition)

    def count_live(self, facet: tuple[str, str]) -> int:
        """Non-archived clients with an entry in the facet: a consistent COUNT over its partition."""
        with storage_errors():
            return FacetEntry.count(keys.facet_pk(self.tenant_id, *facet), consistent_read=True,
                                    filter_condition=FacetEntry.live == True)  # noqa: E712

    def entries(self, facet: tuple[str, str], after: str | None = None, upto: str | None = None,
                page_size: int = 200) -> Iterator[FacetEntry]:
        """The facet's entries in client-id order, after `after` and up to `upto` (both optional)."""
        low = after or "0"  # counter items ("#COUNT#n") sort below every client id
        condition = FacetEntry.sk.between(low, upto) if upto else FacetEntry.sk >= low
        with storage_errors():
            for entry in FacetEntry.query(keys.facet_pk(self.tenant_id, *facet), condition, consistent_read=True,
                                          page_size=page_size):
                if entry.sk != after:
                    yield entry

    def members(self, facet_group: list[tuple[str, str]], client_ids: list[str]) -> set[str]:
        """Which of these clients have an entry in any facet of the group (exact key lookups)."""
        wanted = [(keys.facet_pk(self.tenant_id, *f), cid) for f in facet_group for cid in client_ids]
        found: set[str] = set()
        with storage_errors():
            for start in range(0, len(wanted), 100):
                found |= {e.client_id for e in FacetEntry.batch_get(wanted[start:start + 100])}
        return found

    def list(self, query: ListQuery, limit: int) -> tuple[list[Client], list[str] | None]:
        """One page of clients in the query's order, and where the next page starts (None at the end).

        The driving facet group (the smallest) is read through the sort index, its partitions merged in
        order; the other groups are checked by key. Every partition resumes after the last client
        answered, so the cursor is that client's sort value alone.
        """
        driving, *others = sorted(query.groups, key=query.estimate)
        attr = _SORT_ATTR[query.sort]
        heap: list = []
        for facet in driving:
            self._push(heap, self._stream(keys.facet_pk(self.tenant_id, *facet), query), attr, query.descending)
        page: list[Client] = []
        seen: set[str] = set()
        while heap and len(page) < limit:
            batch = []
            while heap and len(batch) < 2 * (limit - len(page)):
                _, _, entry, stream = heapq.heappop(heap)
                self._push(heap, stream, attr, query.descending)
                if entry.client_id not in seen:
                    seen.add(entry.client_id)
                    batch.append(entry)
            ids = [e.client_id for e in batch]
            for group in others:
                allowed = self.members(group, ids)
                ids = [cid for cid in ids if cid in allowed]
            found = self.get_many(ids)
            page.extend(found[cid] for cid in ids if cid in found and query.check(found[cid]))
        if len(page) > limit or (len(page) == limit and heap):
            page = page[:limit]
            last = facet_entry(page[-1], ("", ""))
            return page, [getattr(last, attr), page[-1].id]
        return page, None

    def _stream(self, pk: str, query: ListQuery) -> Iterator[FacetEntry]:
        attr = _SORT_ATTR[query.sort]
        start = None
        if query.after:
            start = {"pk": {"S": pk}, "sk": {"S": query.after[1]}, attr: {"S": query.after[0]}}
        condition = FacetEntry.search.contains(query.q.casefold()) if query.q else None
        with storage_errors():
            yield from getattr(FacetEntry, _SORT_INDEX[query.sort]).query(
                pk, filter_condition=condition, scan_index_forward=not query.descending,
                last_evaluated_key=start, page_size=100)

    @staticmethod
    def _push(heap: list, stream: Iterator[FacetEntry], attr: str, descending: bool) -> None:
        with storage_errors():
            entry = next(stream, None)
        if entry is not None:
            value = getattr(entry, attr)
            heapq.heappush(heap, (_Desc(value) if descending else value, next(_tiebreak), entry, stream))

    # --- writes ----------------------------------------------------------------------------------
    def create(self, client: Client, rules: FacetRules) -> Client:
        register_tenant(self.tenant_id)
        new_f = facets(client, rules)

        def build(tx: TransactWrite) -> None:
            tx.save(to_item(client), condition=ClientItem.pk.does_not_exist())
            tx.save(ClientNumberItem(keys.client_number_pk(self.tenant_id, client.client_number), keys.UNIQUE_SK,
                                     client_id=client.id), condition=ClientNumberItem.pk.does_not_exist())
            self._write_facets(tx, None, client, set(), new_f)

        try:
            commit(build)
        except TransactWriteError as exc:
            if reason_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                raise NumberTaken(client.client_number) from exc
            raise
        return client.model_copy(update={"rev": 1})

    def save(self, old: Client, new: Client, rules: FacetRules,
             extra: Callable[[TransactWrite], None] | None = None, derived: bool = False) -> Client:
        """Write `new` over `old` if nobody changed it since it was read (else VersionConflict).

        `extra` adds the writes of children (contacts) to the same transaction. A `derived` write (scores,
        figures) keeps the public `version`, so it never makes a user's If-Match stale.
        """
        old_f, new_f = facets(old, rules), facets(new, rules)
        version = old.version if derived else old.version + 1
        stamp = {} if derived or not self.actor else {"updated_by": self.actor}
        new = new.model_copy(update=stamp)
        item = to_item(new.model_copy(update={"version": version, "rev": old.rev}))

        def build(tx: TransactWrite) -> None:
            tx.save(item)
            if extra:
                extra(tx)
            self._write_facets(tx, old, new, old_f, new_f)

        commit_versioned(build, "the client was changed by someone else; read it again")
        return new.model_copy(update={"version": version, "rev": old.rev + 1})

    def all_ids(self) -> list[str]:
        """Every client id of the tenant, archived ones too, read from the `status=*` facet partitions."""
        ids: list[str] = []
        for status in ("lead", "trial", "active", "inactive", "archived"):
            ids.extend(e.client_id for e in self.entries(("status", status), page_size=500))
        return ids

    def refacet_all(self, old_rules: FacetRules, new_rules: FacetRules) -> int:
        """After a settings change, move every client whose facets differ under the new rules."""
        return sum(self._refacet(client_id, old_rules, new_rules) for client_id in self.all_ids())

    def _refacet(self, client_id: str, old_rules: FacetRules, new_rules: FacetRules) -> int:
        def attempt() -> int:  # a client changed meanwhile is read again
            client = self.get(client_id)
            old_f, new_f = facets(client, old_rules), facets(client, new_rules)
            if old_f == new_f:
                return 0

            def build(tx: TransactWrite) -> None:
                tx.condition_check(ClientItem, keys.client_pk(self.tenant_id, client_id), keys.CLIENT_SK,
                                   condition=same_rev(client))
                self._write_facets(tx, client, client, old_f, new_f)

            commit_versioned(build, "moved meanwhile")
            return 1
        return retrying(attempt, f"client {client_id}")

    def prune_new(self, since: datetime) -> int:
        """Drop `new` list entries of clients created before `since`; reads only those entries."""
        pk = keys.facet_pk(self.tenant_id, "new", "1")
        pruned = 0
        with storage_errors():
            for entry in FacetEntry.by_created.query(pk, FacetEntry.s_created < iso(since), page_size=100):
                FacetEntry(pk, entry.sk).delete()
                pruned += 1
        return pruned

    def _write_facets(self, tx: TransactWrite, old: Client | None, new: Client, old_f: set, new_f: set) -> None:
        for facet in old_f - new_f:
            tx.delete(FacetEntry(keys.facet_pk(self.tenant_id, *facet), new.id))
        for facet in new_f:
            tx.save(facet_entry(new, facet))
        shard = keys.count_sk(random.randrange(keys.COUNT_SHARDS))
        for facet, delta in _counter_deltas(old, new, old_f, new_f).items():
            tx.update(FacetCount(keys.facet_pk(self.tenant_id, *facet), shard),
                      actions=[FacetCount.n.add(delta), FacetCount.kind.set(FacetCount)])


class _Desc:
    """Inverts string order inside the heap for descending sorts."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __lt__(self, other: "_Desc") -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value
