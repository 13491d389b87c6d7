"""Client repository: the client item, its unique number and its facet entries and counters, written together."""
from __future__ import annotations

import contextvars
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.domain import search
from chalicelib.domain.clients import (
    COUNTED_FACETS,
    Client,
    Created,
    Facet,
    FacetRules,
    ListPlan,
    LookupKey,
    NumberTaken,
    created_day,
    facets,
    generate_number,
    lookup_keys,
    name_key,
    search_text,
)
from chalicelib.domain.duplicates import EXACT
from chalicelib.domain.errors import NotFound, Unavailable, VersionConflict
from chalicelib.domain.retry import retrying
from chalicelib.domain.values import iso
from chalicelib.tables import keys, search_index
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.idempotency import fence
from chalicelib.tables.items import (
    ClientItem,
    ClientKeyItem,
    ClientNumberItem,
    DayCount,
    FacetCount,
    FacetEntry,
)
from chalicelib.tables.records import fields_of, record_from
from chalicelib.tables.tenants import register_tenant
from chalicelib.tables.transactions import commit, commit_versioned, send_built

_SORT_INDEX = {"name": "by_name", "created_at": "by_created", "health_score": "by_health"}
_SORT_ATTR = {"name": "s_name", "created_at": "s_created", "health_score": "s_health"}
WALK_BUDGET = 2000  # facet entries one filtered page may read; then it answers short, with a position
WALK_PAGE = 200  # entries a filtered walk reads per Query
MIN_SHARE = 0.05  # the least share of the driving group a page reads ahead for (other groups drop the rest)


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


def facet_entry(client: Client, facet: Facet) -> FacetEntry:
    nk = name_key(client.name)
    return FacetEntry(
        keys.facet_pk(client.tenant_id, *facet), client.id, client_id=client.id, live=not client.is_archived,
        search=search_text(client), created_at=iso(client.created_at),
        s_name=keys.name_sort(nk, client.id), s_created=keys.created_sort(iso(client.created_at), client.id),
        s_health=keys.health_sort(client.health_score, nk, client.id))


def _same_entries(old: Client | None, new: Client) -> bool:
    """Whether every facet entry of `new` would hold what `old`'s holds (their keys aside)."""
    return old is not None and \
        facet_entry(old, ("", "")).attribute_values == facet_entry(new, ("", "")).attribute_values


CREATED = "created"  # the counters-only facet ("created", "YYYY-MM-DD"): non-archived clients created that day


def _counter_deltas(old: Client | None, new: Client, old_f: set[Facet], new_f: set[Facet]) -> dict[Facet, int]:
    """+1/-1 per counted facet whose non-archived membership changes, the client's creation day among them."""
    deltas: dict[Facet, int] = {}
    day = (CREATED, created_day(new))
    for facet in (old_f | new_f | {day}):
        if facet[0] not in COUNTED_FACETS and facet != day:
            continue
        before = int((facet in old_f or facet == day) and old is not None and not old.is_archived)
        after = int((facet in new_f or facet == day) and not new.is_archived)
        if after != before:
            deltas[facet] = after - before
    return deltas


def _counter(tenant_id: str, facet: Facet, shard: int) -> FacetCount | DayCount:
    """The counter item (one shard) of a counted facet; creation days count in one partition, a day per key."""
    if facet[0] == CREATED:
        return DayCount(keys.created_counts_pk(tenant_id), keys.day_count_sk(facet[1], shard))
    return FacetCount(keys.facet_pk(tenant_id, *facet), keys.count_sk(shard))


def _add(tx: TransactWrite, counter: FacetCount | DayCount, delta: int) -> None:
    tx.update(counter, actions=[type(counter).n.add(delta), type(counter).kind.set(type(counter))])


def _terms(client: Client) -> set[str]:
    return search.index_terms(search_text(client))


BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem
BATCH_GET_ROUNDS = 8  # calls per page while the database leaves keys unprocessed (throttling), backing off between


UNPROCESSED = "the database kept some reads unprocessed (throttled); nothing was written, try again"


def batch_get(wanted: list[dict[str, Any]], consistent: bool, attributes: list[str] | None = None,
              unprocessed: str = UNPROCESSED) -> Iterator[dict[str, Any]]:
    """The raw items of `wanted` keys that exist, 100 keys a call. Unprocessed keys (a throttled partition) are
    asked again after a jittered, doubling wait, as AWS advises; PynamoDB's own batch_get retries them at once."""
    connection = TableItem._get_connection()
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        page = wanted[start:start + BATCH_GET_KEYS]
        for round_ in range(BATCH_GET_ROUNDS):
            # PynamoDB annotates `keys` as Sequence[str] but reads each as a {"pk": ..., "sk": ...} mapping.
            data = connection.batch_get_item(page, consistent_read=consistent or None,  # type: ignore[arg-type]
                                             attributes_to_get=attributes)
            yield from data.get("Responses", {}).get(connection.table_name, [])
            page = data.get("UnprocessedKeys", {}).get(connection.table_name, {}).get("Keys") or []
            if not page:
                break
            time.sleep(random.uniform(0, min(1.0, 0.05 * 2 ** round_)))
        else:
            raise Unavailable(unprocessed)


def same_rev(client: Client) -> Condition:
    """The condition that the stored client is still the one read."""
    return ClientItem.rev == client.rev if client.rev else ClientItem.rev.does_not_exist()


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

    def get_many(self, client_ids: list[str], consistent: bool = False) -> dict[str, Client]:
        """The clients of these ids that exist, by id: BatchGetItem, 100 keys a call, unprocessed keys retried."""
        wanted = [{"pk": keys.client_pk(self.tenant_id, cid), "sk": keys.CLIENT_SK}
                  for cid in dict.fromkeys(client_ids)]
        with storage_errors():
            return {item.id: from_item(item) for item in map(ClientItem.from_raw_data, batch_get(wanted, consistent))}

    def counts(self, facet_list: list[Facet]) -> dict[Facet, int]:
        """Non-archived clients per counted facet: the sum of the facet's counter shards."""
        wanted = [(keys.facet_pk(self.tenant_id, *f), keys.count_sk(n))
                  for f in dict.fromkeys(facet_list) for n in range(keys.COUNT_SHARDS)]
        totals: dict[str, int] = {}
        with storage_errors():
            for start in range(0, len(wanted), 100):
                for item in FacetCount.batch_get(wanted[start:start + 100]):
                    totals[item.pk] = totals.get(item.pk, 0) + int(item.n)
        return {f: max(totals.get(keys.facet_pk(self.tenant_id, *f), 0), 0) for f in facet_list}

    def count_created_since(self, since: datetime) -> int:
        """Non-archived clients created on the day of `since` or later: the per-day counters of those days (one
        Query of a small partition, at any tenant size)."""
        day = f"{since:%Y-%m-%d}"
        with storage_errors():
            return max(sum(int(c.n) for c in DayCount.query(keys.created_counts_pk(self.tenant_id),
                                                             DayCount.sk >= day, page_size=500)), 0)

    def count_live(self, facet: Facet) -> int:
        """Non-archived clients with an entry in the facet: a consistent COUNT over its partition."""
        with storage_errors():
            return FacetEntry.count(keys.facet_pk(self.tenant_id, *facet), consistent_read=True,
                                    filter_condition=FacetEntry.live == True)  # noqa: E712

    def client_ids(self, facet: Facet, after: str | None = None, upto: str | None = None,
                   page_size: int = 200) -> Iterator[str]:
        """The ids of the facet's clients in id order, after `after` and up to `upto` (both optional)."""
        return (entry.client_id for entry in self._entries(facet, after, upto, page_size))

    def _entries(self, facet: Facet, after: str | None = None, upto: str | None = None,
                 page_size: int = 200) -> Iterator[FacetEntry]:
        """The facet's entries in client-id order, after `after` and up to `upto` (both optional)."""
        low = after or "0"  # counter items ("#COUNT#n") sort below every client id
        condition = FacetEntry.sk.between(low, upto) if upto else FacetEntry.sk >= low
        with storage_errors():
            for entry in FacetEntry.query(keys.facet_pk(self.tenant_id, *facet), condition, consistent_read=True,
                                          page_size=page_size):
                if entry.sk != after:
                    yield entry

    def _members(self, facet_group: list[Facet], client_ids: list[str]) -> set[str]:
        """Which of these clients have an entry in any facet of the group (exact key lookups)."""
        wanted = [(keys.facet_pk(self.tenant_id, *f), cid) for f in facet_group for cid in client_ids]
        found: set[str] = set()
        with storage_errors():
            for start in range(0, len(wanted), 100):
                found |= {e.client_id for e in FacetEntry.batch_get(wanted[start:start + 100])}
        return found

    def page(self, plan: ListPlan, limit: int, after: list[str] | None = None
             ) -> tuple[list[Client], list[str] | None]:
        """One page of the plan's clients in its order, and where the next page starts (None at the end): the
        last client's [sort value, id]. A page may come back short, with a position, when its reads reached
        WALK_BUDGET: no request reads a tenant."""
        candidates = search_index.candidates(self.tenant_id, "client", plan.q) if plan.q else None
        if candidates is not None:
            return self._search_page(plan, candidates, limit, after)
        groups, fraction = self._by_size(plan)
        return self._page(plan, groups, fraction, limit, after)

    def pages(self, plan: ListPlan, page_size: int = 100) -> Iterator[list[Client]]:
        """Every client of the plan in its order, a page at a time, each resuming after the last."""
        after = None
        while True:
            page, after = self.page(plan, page_size, after)
            if page:
                yield page
            if after is None:
                return

    def _by_size(self, plan: ListPlan) -> tuple[list[list[Facet]], float]:
        """The plan's facet groups, the smallest first (by their counters; a facet without one counts 0), and the
        share of the driving group's clients the other groups are expected to keep. One group needs no counts."""
        if len(plan.groups) == 1:
            return plan.groups, 1.0
        known = self.counts(plan.counted)
        size = {id(group): sum(known.get(f, 0) for f in group) for group in plan.groups}
        groups = sorted(plan.groups, key=lambda group: size[id(group)])
        live = known.get(("live", "1")) or max(size.values()) or 1
        fraction = 1.0
        for group in groups[1:]:
            counted = all(f[0] in COUNTED_FACETS for f in group)
            fraction *= min(1.0, size[id(group)] / live) if counted else 0.5
        return groups, max(fraction, MIN_SHARE)

    # --- search: the rarest trigram's partition, each candidate checked exactly -------------------
    def _search_page(self, plan: ListPlan, candidates: set[str], limit: int, after: list[str] | None
                     ) -> tuple[list[Client], list[str] | None]:
        """The candidates that hold `q` and every facet group (their entries read by key), sorted in memory, and
        the page after `after`."""
        attr = _SORT_ATTR[plan.sort]
        entries = self._entries_of(plan.groups[0], sorted(candidates))
        rows = [e for e in entries if search.matches(e.search, plan.q or "")]
        for group in plan.groups[1:]:
            allowed = self._members(group, [e.client_id for e in rows])
            rows = [e for e in rows if e.client_id in allowed]
        rows.sort(key=lambda e: getattr(e, attr), reverse=plan.descending)
        if after:
            rows = [e for e in rows if (getattr(e, attr) < after[0]) == plan.descending
                    and getattr(e, attr) != after[0]]
        page: list[Client] = []
        rest = iter(rows)
        while len(page) < limit:
            ids = [e.client_id for e in itertools.islice(rest, limit - len(page))]
            if not ids:
                return page, None
            found = self.get_many(ids)
            page.extend(found[cid] for cid in ids if cid in found and plan.passes(found[cid]))
        if next(rest, None) is None:
            return page, None
        return page, [getattr(facet_entry(page[-1], ("", "")), attr), page[-1].id]

    def _entries_of(self, group: list[Facet], client_ids: list[str]) -> list[FacetEntry]:
        """The entries of these clients in any facet of the group (one each), by key."""
        wanted = [(keys.facet_pk(self.tenant_id, *f), cid) for f in group for cid in client_ids]
        found: dict[str, FacetEntry] = {}
        with storage_errors():
            for start in range(0, len(wanted), 100):
                for entry in FacetEntry.batch_get(wanted[start:start + 100]):
                    found.setdefault(entry.client_id, entry)
        return list(found.values())

    # --- walks: the driving group's partitions merged in order ------------------------------------
    def _page(self, plan: ListPlan, groups: list[list[Facet]], fraction: float, limit: int,
              after: list[str] | None) -> tuple[list[Client], list[str] | None]:
        """The driving facet group (the first) is read through the sort index, its partitions merged in order;
        the other groups are checked by key, `q` on each entry. Every partition resumes after the last client
        answered (or, on a short page, the last entry read), so the position is that sort value alone."""
        driving, *others = groups
        attr = _SORT_ATTR[plan.sort]
        filtered = bool(others or plan.q)
        # Unfiltered, a page reads what it answers and one more entry (there is more); filtered, whole pages.
        page_size = WALK_PAGE if filtered else limit + 1
        heap: list[tuple[Any, int, FacetEntry, Iterator[FacetEntry]]] = []
        for facet in driving:
            self._push(heap, self._stream(keys.facet_pk(self.tenant_id, *facet), plan, after, page_size), attr,
                       plan.descending)
        page: list[Client] = []
        seen: set[str] = set()
        read = 0
        last: FacetEntry | None = None
        while heap and len(page) < limit and read < WALK_BUDGET:
            batch: list[FacetEntry] = []
            # Other groups drop some of the driving group's clients: read ahead by the share they keep.
            wanted = min(WALK_PAGE, math.ceil((limit - len(page)) / fraction))
            while heap and len(batch) < wanted and read < WALK_BUDGET:
                _, _, entry, stream = heapq.heappop(heap)
                self._push(heap, stream, attr, plan.descending)
                read += 1
                last = entry
                if entry.client_id not in seen and (not plan.q or search.matches(entry.search, plan.q)):
                    seen.add(entry.client_id)
                    batch.append(entry)
            ids = [e.client_id for e in batch]
            for group in others:
                allowed = self._members(group, ids)
                ids = [cid for cid in ids if cid in allowed]
            found = self.get_many(ids) if ids else {}
            page.extend(found[cid] for cid in ids if cid in found and plan.passes(found[cid]))
        if len(page) > limit or (len(page) == limit and heap):
            page = page[:limit]
            return page, [getattr(facet_entry(page[-1], ("", "")), attr), page[-1].id]
        if heap and last is not None:  # the budget ran out first: a short page, resuming after the last entry read
            return page, [getattr(last, attr), last.client_id]
        return page, None

    def _stream(self, pk: str, plan: ListPlan, after: list[str] | None, page_size: int) -> Iterator[FacetEntry]:
        attr = _SORT_ATTR[plan.sort]
        start = None
        if after:
            start = {"pk": {"S": pk}, "sk": {"S": after[1]}, attr: {"S": after[0]}}
        with storage_errors():
            yield from getattr(FacetEntry, _SORT_INDEX[plan.sort]).query(
                pk, scan_index_forward=not plan.descending, last_evaluated_key=start, page_size=page_size)

    @staticmethod
    def _push(heap: list[tuple[Any, int, FacetEntry, Iterator[FacetEntry]]], stream: Iterator[FacetEntry],
              attr: str, descending: bool) -> None:
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

    def load_items(self, clients: list[Client], rules: FacetRules) -> list[TableItem]:
        """Every item creating these clients in an empty tenant writes, counters and lookup keys summed, for a bulk
        loader (`make bench`) to put in batches: the same items `create` writes, from the same functions."""
        register_tenant(self.tenant_id)
        out: list[TableItem] = []
        deltas: dict[Facet, int] = {}
        held: dict[LookupKey, set[str]] = {}
        for client in clients:
            new_f = facets(client, rules)
            out.append(to_item(client))
            out.append(ClientNumberItem(keys.client_number_pk(self.tenant_id, client.client_number), keys.UNIQUE_SK,
                                        client_id=client.id))
            out.extend(facet_entry(client, facet) for facet in new_f)
            out.extend(search_index.entries(self.tenant_id, "client", client.id, search_text(client)))
            for facet, delta in _counter_deltas(None, client, set(), new_f).items():
                deltas[facet] = deltas.get(facet, 0) + delta
            for key in lookup_keys(client):
                held.setdefault(key, set()).add(client.id)
        for facet, n in deltas.items():
            counter = _counter(self.tenant_id, facet, 0)
            counter.n = n
            out.append(counter)
        out.extend(ClientKeyItem(keys.client_key_pk(self.tenant_id, *key), keys.UNIQUE_SK, client_ids=ids)
                   for key, ids in held.items())
        return out

    def save(self, old: Client, new: Client, rules: FacetRules, derived: bool = False, *,
             extra: Callable[[TransactWrite], None] | None = None) -> Client:
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
            ids.extend(e.client_id for e in self._entries(("status", status), page_size=500))
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

    # --- verify and recount (the ops jobs): what is stored, read by key; repairs -----------------------
    def count_entries(self, facet: Facet) -> int:
        """Every entry of the facet's partition, archived clients' too: a consistent COUNT."""
        with storage_errors():
            return FacetEntry.count(keys.facet_pk(self.tenant_id, *facet), FacetEntry.sk >= "0", consistent_read=True)

    def number_holders(self, numbers: list[str]) -> dict[str, str]:
        """The client each of these client numbers' items names, by number (numbers without an item left out)."""
        prefix = keys.client_number_pk(self.tenant_id, "")
        wanted = [{"pk": prefix + n, "sk": keys.UNIQUE_SK} for n in dict.fromkeys(numbers)]
        with storage_errors():
            return {raw["pk"]["S"][len(prefix):]: raw["client_id"]["S"]
                    for raw in batch_get(wanted, True, ["pk", "client_id"])}

    def stored_entries(self, wanted: list[tuple[Facet, str]]) -> dict[tuple[Facet, str], bool]:
        """Which of these (facet, client id) entries exist, each with its `live` (consistent BatchGetItem)."""
        pks = {keys.facet_pk(self.tenant_id, *facet): facet for facet, _ in wanted}
        live = FacetEntry.live.attr_name
        with storage_errors():
            return {(pks[raw["pk"]["S"]], raw["sk"]["S"]): bool(raw.get(live, {}).get("BOOL"))
                    for raw in batch_get([{"pk": pk, "sk": cid} for pk, cid in dict.fromkeys(
                        (keys.facet_pk(self.tenant_id, *f), cid) for f, cid in wanted)], True, ["pk", "sk", live])}

    def indexed(self, wanted: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (search term, client id) entries the clients' search index holds."""
        pks = {keys.search_pk(self.tenant_id, "client", term): term for term, _ in wanted}
        with storage_errors():
            return {(pks[raw["pk"]["S"]], raw["sk"]["S"])
                    for raw in batch_get([{"pk": keys.search_pk(self.tenant_id, "client", term), "sk": cid}
                                          for term, cid in dict.fromkeys(wanted)], True, ["pk", "sk"])}

    def counter_totals(self, facet_list: list[Facet]) -> dict[Facet, int]:
        """The sum of each counted facet's shards as stored, negative too (`counts` answers at least 0)."""
        wanted = [{"pk": keys.facet_pk(self.tenant_id, *f), "sk": keys.count_sk(n)}
                  for f in dict.fromkeys(facet_list) for n in range(keys.COUNT_SHARDS)]
        pks = {keys.facet_pk(self.tenant_id, *f): f for f in facet_list}
        totals = dict.fromkeys(facet_list, 0)
        with storage_errors():
            for raw in batch_get(wanted, True, ["pk", "n"]):
                totals[pks[raw["pk"]["S"]]] += int(raw.get("n", {}).get("N", "0"))
        return totals

    def day_totals(self) -> dict[str, int]:
        """The per-day creation counters as stored, their shards summed, by day (`YYYY-MM-DD`)."""
        totals: dict[str, int] = {}
        with storage_errors():
            for count in DayCount.query(keys.created_counts_pk(self.tenant_id), consistent_read=True, page_size=500):
                day = count.sk.rsplit("#", 1)[0]
                totals[day] = totals.get(day, 0) + int(count.n)
        return totals

    def add_to_counter(self, facet: Facet, delta: int) -> None:
        """ADD `delta` to shard 0 of a counted facet's counter (an ADD: concurrent ADDs of writers are kept)."""
        commit(lambda tx: _add(tx, _counter(self.tenant_id, facet, 0), delta))

    def add_to_day_counter(self, day: str, delta: int) -> None:
        """ADD `delta` to shard 0 of the creation counter of `day` (`YYYY-MM-DD`)."""
        commit(lambda tx: _add(tx, _counter(self.tenant_id, (CREATED, day), 0), delta))

    def repair(self, client: Client, stored: set[Facet], expected: set[Facet], number: bool) -> None:
        """Write again what the client's own transaction writes (counters aside): its number item when `number`
        (only if absent), every `expected` facet entry (each `live` as the client), every search term, its lookup
        keys; the `stored` entries not expected are deleted. VersionConflict when the client changed since read."""
        def build(tx: TransactWrite) -> None:
            tx.condition_check(ClientItem, keys.client_pk(self.tenant_id, client.id), keys.CLIENT_SK,
                               condition=same_rev(client))
            if number:
                tx.save(ClientNumberItem(keys.client_number_pk(self.tenant_id, client.client_number), keys.UNIQUE_SK,
                                         client_id=client.id), condition=ClientNumberItem.pk.does_not_exist())
            self._write_facets(tx, None, client, stored, expected, counters=False)

        commit_versioned(build, "the client changed meanwhile; read it again")

    def drop_orphan_entry(self, facet: Facet, client_id: str) -> None:
        """Delete a facet entry whose client does not exist (VersionConflict if it does by now)."""
        def build(tx: TransactWrite) -> None:
            tx.condition_check(ClientItem, keys.client_pk(self.tenant_id, client_id), keys.CLIENT_SK,
                               condition=ClientItem.pk.does_not_exist())
            tx.delete(FacetEntry(keys.facet_pk(self.tenant_id, *facet), client_id))

        commit_versioned(build, "the client exists now")

    def _write_facets(self, tx: TransactWrite, old: Client | None, new: Client, old_f: set[Facet],
                      new_f: set[Facet], *, counters: bool = True) -> None:
        for facet in old_f - new_f:
            tx.delete(FacetEntry(keys.facet_pk(self.tenant_id, *facet), new.id))
        # Entries of facets kept are rewritten only when what they hold (name, health, archived...) changed: a
        # tag or category change writes one entry, not every one of the client's (bulk actions: 40% faster).
        for facet in new_f - old_f if _same_entries(old, new) else new_f:
            tx.save(facet_entry(new, facet))
        search_index.write(tx, self.tenant_id, "client", new.id, search_text(old) if old else None, search_text(new))
        shard = random.randrange(keys.COUNT_SHARDS)
        for facet, delta in (_counter_deltas(old, new, old_f, new_f) if counters else {}).items():
            _add(tx, _counter(self.tenant_id, facet, shard), delta)  # `counters=False`: a repair sets them itself
        before, after = (lookup_keys(old) if old is not None else set()), lookup_keys(new)
        for key in after - before:
            self._hold(tx, key, {new.id})
        for key in before - after:
            self._hold(tx, key, {new.id}, release=True)

    def _hold(self, tx: TransactWrite, key: LookupKey, client_ids: set[str], release: bool = False,
              unheld: bool = False) -> None:
        """Add (or remove) clients to the holders of a lookup key: a set, so a repeated write changes nothing.
        `unheld`: only if nobody holds it (DynamoDB drops an emptied set)."""
        attr = ClientKeyItem.client_ids
        tx.update(ClientKeyItem(keys.client_key_pk(self.tenant_id, *key), keys.UNIQUE_SK),
                  actions=[attr.delete(client_ids) if release else attr.add(client_ids),
                           ClientKeyItem.kind.set(ClientKeyItem)],
                  condition=attr.does_not_exist() if unheld else None)

    # --- lookups and batch creates (imports) -------------------------------------------------------
    def holders(self, wanted: list[LookupKey]) -> dict[LookupKey, list[str]]:
        """The live clients holding each lookup key (lookup_keys), by key; keys nobody holds are left out.
        Strongly consistent BatchGetItem, 100 keys a call."""
        pks = {keys.client_key_pk(self.tenant_id, *key): key for key in dict.fromkeys(wanted)}
        found: dict[LookupKey, list[str]] = {}
        with storage_errors():
            for raw in batch_get([{"pk": pk, "sk": keys.UNIQUE_SK} for pk in pks], True, ["pk", "client_ids"],
                                 "the database kept some reads unprocessed (throttled); try again"):
                ids = raw.get("client_ids", {}).get("SS")
                if ids:
                    found[pks[raw["pk"]["S"]]] = sorted(ids)
        return found

    def index_lookups(self, client_ids: list[str]) -> int:
        """Make the lookup keys of these clients hold them (clients written before lookup keys existed); a set
        add, so running it again changes nothing. Each transaction checks its clients are still as read; a client
        changed meanwhile is read again. Answers how many clients hold a key."""
        def attempt(ids: list[str]) -> int:
            current = [c for c in self.get_many(ids, consistent=True).values() if lookup_keys(c)]
            if not current:
                return 0

            def build(tx: TransactWrite) -> None:
                held: dict[LookupKey, set[str]] = {}  # clients sharing a key (a domain): one update of it
                for client in current:
                    tx.condition_check(ClientItem, keys.client_pk(self.tenant_id, client.id), keys.CLIENT_SK,
                                       condition=same_rev(client))
                    for key in lookup_keys(client):
                        held.setdefault(key, set()).add(client.id)
                for key, ids in held.items():
                    self._hold(tx, key, ids)

            commit_versioned(build, "changed meanwhile")
            return len(current)
        step = MAX_TRANSACTION // 5  # a check and at most four keys per client
        return sum(retrying(partial(attempt, client_ids[n:n + step]), "clients being indexed")
                   for n in range(0, len(client_ids), step))

    def create_many(self, clients: list[Client], rules: FacetRules,
                    marks: Callable[[Client], list[Any]] | None = None, unique_keys: bool = False) -> Created:
        """Create new clients, each atomically with its number, facets, lookup keys and `marks` (the caller's
        items, e.g. an import's row fingerprint, each with its condition), packed into transactions of at most
        MAX_TRANSACTION items whose counter changes are summed into one update per counter.

        A number taken meanwhile is drawn again and the transaction retried. A client is left out (`refused`)
        when its own item or one of its marks fails its condition (an earlier run wrote it) or, with
        `unique_keys`, when a live client holds one of its lookup keys by then (an import's duplicate rule, kept
        under concurrent runs too).
        """
        register_tenant(self.tenant_id)
        marks = marks or (lambda client: [])
        plans = [_Plan(c, facets(c, rules), lookup_keys(c), marks(c)) for c in clients]
        _distinct_numbers(plans)
        chunks = []
        while plans:
            chunk, plans = _pack(plans)
            chunks.append(chunk)
        out = Created()
        first = random.randrange(keys.COUNT_SHARDS)  # chunk i updates counter shard first + i
        # One transaction at a time (DynamoDB Local applies them one after another anyway, and moto's are not
        # thread-safe), but the next one is built while the database applies this one.
        with ThreadPoolExecutor(max_workers=1) as ahead:
            upcoming: Future[_Built] | None = None
            for i, chunk in enumerate(chunks):
                built = upcoming.result() if upcoming else self._build(chunk, first + i, unique_keys)
                if i + 1 < len(chunks):
                    upcoming = ahead.submit(contextvars.copy_context().run, self._build, chunks[i + 1],
                                            first + i + 1, unique_keys)
                created, refused = self._create_chunk(chunk, first + i, unique_keys, built)
                out.clients.extend(created)
                out.refused.extend(refused)
        return out

    def _build(self, chunk: list[_Plan], n: int, unique_keys: bool) -> _Built:
        """The transaction of these new clients, serialised, not sent (counter shard n, modulo the shards)."""
        tx = TransactWrite(connection=TableItem._get_connection().connection)
        built = _Built(tx)
        deltas: dict[Facet, int] = {}
        held: dict[LookupKey, list[_Plan]] = {}
        for plan in chunk:
            client = plan.client
            tx.save(to_item(client), condition=ClientItem.pk.does_not_exist())
            tx.save(ClientNumberItem(keys.client_number_pk(self.tenant_id, client.client_number), keys.UNIQUE_SK,
                                     client_id=client.id), condition=ClientNumberItem.pk.does_not_exist())
            built.puts.extend([([plan], "client"), ([plan], "number")])
            for item, condition in plan.marks:
                tx.save(item, condition=condition)
                built.puts.append(([plan], "mark"))
            for facet in plan.facets:
                tx.save(facet_entry(client, facet))
                built.puts.append(([plan], "facet"))
            for entry in search_index.entries(self.tenant_id, "client", client.id, search_text(client)):
                tx.save(entry)
                built.puts.append(([plan], "search"))
            for facet, delta in _counter_deltas(None, client, set(), plan.facets).items():
                deltas[facet] = deltas.get(facet, 0) + delta
            for key in plan.keys:
                held.setdefault(key, []).append(plan)
        for facet, delta in deltas.items():
            _add(tx, _counter(self.tenant_id, facet, n % keys.COUNT_SHARDS), delta)
            built.updates.append(([], "counter"))
        for key, holding in held.items():  # an import's rule: no live client holds its email or VAT number yet
            self._hold(tx, key, {p.client.id for p in holding}, unheld=unique_keys and key[0] in EXACT)
            built.updates.append((holding, "key"))
        fence(tx)  # inside an Idempotency-Key request: mark the key in the same transaction
        return built

    def _create_chunk(self, chunk: list[_Plan], n: int, unique_keys: bool,
                      built: _Built | None) -> tuple[list[Client], list[Client]]:
        """Send one chunk's transaction: (created, refused). When conditions fail, a number taken meanwhile is
        drawn again and a client whose own item, mark or lookup key fails its condition is left out (`refused`,
        removed from `chunk`); the rest is built again and sent again, as a lost race is."""
        refused: list[Client] = []
        ready = [built] if built is not None else []

        def attempt() -> list[Client]:
            if ready:
                tx = ready.pop()
            else:
                _distinct_numbers(chunk)
                tx = self._build(chunk, n, unique_keys)
            try:
                send_built(tx.tx)
            except TransactWriteError as exc:
                roles = tx.puts + tx.updates
                failed = [roles[i] for i, code in enumerate(reason_codes(exc)[:len(roles)])
                          if code == "ConditionalCheckFailed"]
                if not failed:
                    raise
                for plans, role in failed:
                    for plan in plans:
                        if role == "number":
                            plan.redraw()
                        elif plan in chunk:  # it exists (an earlier run wrote it), or its key is held now
                            chunk.remove(plan)
                            refused.append(plan.client)
                if not chunk:
                    return []
                raise VersionConflict("a client number was taken, or a client written, meanwhile") from exc
            return [p.client.model_copy(update={"rev": 1}) for p in chunk]

        return retrying(attempt, "the client numbers"), refused


Mark = tuple[TableItem, Any]  # an item written with a new client, and its condition (None: unconditional)
MAX_TRANSACTION = 100  # DynamoDB's limit of items per TransactWriteItems


@dataclass
class _Built:
    """A transaction of new clients, serialised, and what each of its items is written for, in the order sent (a
    transaction sends its puts before its updates)."""

    tx: TransactWrite
    puts: list[tuple[list[_Plan], str]] = field(default_factory=list)
    updates: list[tuple[list[_Plan], str]] = field(default_factory=list)


@dataclass(eq=False)
class _Plan:
    client: Client
    facets: set[Facet]
    keys: set[LookupKey]
    marks: list[Mark]
    terms: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.terms = _terms(self.client)

    @property
    def counted(self) -> set[Facet]:
        return {f for f in self.facets if f[0] in COUNTED_FACETS} | {(CREATED, created_day(self.client))}

    @property
    def own_items(self) -> int:  # client, number, marks, facet and search entries; counters and keys are shared
        return 2 + len(self.marks) + len(self.facets) + len(self.terms)

    def redraw(self) -> None:
        self.client = self.client.model_copy(update={"client_number": generate_number("CLT", self.client.created_at)})
        self.terms = _terms(self.client)  # the number is searched: its trigrams change with it


def _pack(plans: list[_Plan]) -> tuple[list[_Plan], list[_Plan]]:
    """The first plans that fit one transaction (at least one), and the rest."""
    counters: set[Facet] = set()
    held: set[LookupKey] = set()
    own = 0
    for n, plan in enumerate(plans):
        more_counters = counters | plan.counted
        more_held = held | plan.keys
        if n and own + plan.own_items + len(more_counters) + len(more_held) > MAX_TRANSACTION:
            return plans[:n], plans[n:]
        counters, held, own = more_counters, more_held, own + plan.own_items
    return plans, []


def _distinct_numbers(chunk: list[_Plan]) -> None:
    """Numbers drawn in one second can repeat (65,536 a second): a transaction may not write one number item twice,
    and one that is taken meanwhile makes the transaction fail, so repeats are drawn again before writing."""
    seen: set[str] = set()
    for plan in chunk:
        while plan.client.client_number in seen:
            plan.redraw()
        seen.add(plan.client.client_number)


class _Desc:
    """Inverts string order inside the heap for descending sorts."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value
