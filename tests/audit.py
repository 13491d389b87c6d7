"""Consistency audit of one tenant's stored state: every derived figure against a recount from the source items."""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.clients import COUNTED_FACETS, FacetRules, created_day, facets, new_client_cutoff, search_text
from chalicelib.domain.response_times import response_times
from chalicelib.domain.search import index_terms
from chalicelib.domain.threads import thread_stats
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.clients import from_item as client_of
from chalicelib.tables.communications import from_item as communication_of
from chalicelib.tables.contacts import from_item as contact_of
from chalicelib.tables.items import (
    ClientItem,
    ClientNumberItem,
    CommunicationItem,
    ContactItem,
    DayCount,
    FacetCount,
    FacetEntry,
    IdempotencyItem,
    SearchEntry,
    ThreadItem,
)
from chalicelib.tables.settings import SettingsRepository
from chalicelib.tables.work_items import CategoryItem, SegmentItem, SegmentLinkItem

# Facets whose entries the client's own transaction writes (segment entries follow through the stream; the `new`
# list is pruned by the daily schedule and confirmed by reads, so a stale entry there is allowed).
OWN_FACETS = {"status", "type", "tier", "risk", "tag", "category", "live", "atrisk", "highvalue"}
CHIP_FACETS = {"all": ("live", "1"), "vip": ("tier", "vip"), "high_value": ("highvalue", "1"),
               "at_risk": ("atrisk", "1"), "inactive": ("status", "inactive")}


@dataclass
class Audit:
    """What the audit read and every inconsistency it found (empty `problems`: the tenant is consistent)."""

    tenant_id: str
    problems: list[str] = field(default_factory=list)
    clients: dict[str, Any] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)  # the derived state, to compare runs with each other

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def __bool__(self) -> bool:
        return not self.problems


def tenant_items(tenant_id: str) -> list[TableItem]:
    """Every item of the tenant. A Scan (filtered on the tenant's key prefix): no key path lists all of a tenant's
    clients or idempotency keys, and the audit must find the ones no facet or counter knows of."""
    configure()
    prefix = f"T#{tenant_id}#"
    return list(TableItem.scan(TableItem.pk.startswith(prefix), consistent_read=True, page_size=500))


def audit(tenant_id: str = "t1", now: datetime | None = None, lease_seconds: float | None = None) -> Audit:
    """Check the tenant (no request may be running; the stream settled when stream-kept figures are to hold):

    - every client has its number item (pointing back at it), and no number item is left without its client;
    - every client has exactly the facet entries its fields imply, each `live` as the client is not archived;
    - every counted facet's shards sum to the non-archived clients in it, and so every chip equals a recount;
    - the per-day creation counters sum to the non-archived clients created that day, and every client is in the
      search index under exactly its terms;
    - every category's `clients_count` and segment's `client_count` equal the non-archived clients carrying it,
      every segment entry has its link item (and back), each `live` as its client;
    - a client has at most one primary contact, its `primary_contact` summary names it, and every contact has
      its number item;
    - every thread's messages_count and the client's average response time equal a recount of its communications;
    - no idempotency key is pending beyond a lease (it would answer `in progress` forever) or stored a 5xx answer.
    """
    from chalicelib.config import get_settings

    now = now or datetime.now(UTC)
    lease_seconds = lease_seconds if lease_seconds is not None else get_settings().function_timeout + 5
    result = Audit(tenant_id)
    items = tenant_items(tenant_id)
    by_type: dict[type, list] = defaultdict(list)
    for item in items:
        by_type[type(item)].append(item)
    t = tenant_id
    clients = {c.id: c for c in map(client_of, by_type[ClientItem])}
    result.clients = clients
    settings = SettingsRepository(t).get("client")
    rules = FacetRules.of(settings, now)
    live = {cid: c for cid, c in clients.items() if not c.is_archived}

    # numbers
    numbers = {i.pk: i for i in by_type[ClientNumberItem]}
    for c in clients.values():
        number = numbers.get(keys.client_number_pk(t, c.client_number))
        result.check(number is not None and number.client_id == c.id, f"client {c.id} lacks its number item")
    for pk, number in numbers.items():
        if "#CLIENTNO#" in pk:
            result.check(number.client_id in clients, f"number item {pk} has no client")
    result.check(len({c.client_number for c in clients.values()}) == len(clients), "client numbers repeat")

    # facet entries and counters
    entries: dict[tuple[str, str], dict[str, FacetEntry]] = defaultdict(dict)
    for entry in by_type[FacetEntry]:
        parsed = keys.parse_facet_pk(entry.pk)
        if parsed:
            entries[(parsed[1], parsed[2])][entry.sk] = entry
    expected: dict[str, set] = {cid: {f for f in facets(c, rules) if f[0] in OWN_FACETS} for cid, c in clients.items()}
    stored: dict[str, set] = defaultdict(set)
    for facet, members in entries.items():
        if facet[0] not in OWN_FACETS:
            continue
        for cid, entry in members.items():
            stored[cid].add(facet)
            client = clients.get(cid)
            result.check(client is not None, f"facet entry {facet} of unknown client {cid}")
            if client is not None:
                result.check(entry.live == (not client.is_archived), f"entry {facet} of {cid}: live={entry.live}")
    for cid in clients:
        result.check(expected[cid] == stored[cid],
                     f"client {cid}: facets missing {sorted(expected[cid] - stored[cid])}, "
                     f"extra {sorted(stored[cid] - expected[cid])}")
    shards: Counter = Counter()
    for count in by_type[FacetCount]:
        parsed = keys.parse_facet_pk(count.pk)
        if parsed:
            shards[(parsed[1], parsed[2])] += int(count.n)
    recounted = Counter(f for cid in live for f in expected[cid] if f[0] in COUNTED_FACETS)
    for facet in set(shards) | set(recounted):
        result.check(shards[facet] == recounted[facet],
                     f"counter {facet}: {shards[facet]} stored, {recounted[facet]} recounted")

    # per-day creation counters and the search index
    days: Counter = Counter()
    for count in by_type[DayCount]:
        days[count.sk.rsplit("#", 1)[0]] += int(count.n)
    recounted_days = Counter(created_day(c) for c in live.values())
    result.check(+days == recounted_days, f"day counters {dict(+days)} != recount {dict(recounted_days)}")
    indexed: dict[str, set[str]] = defaultdict(set)
    for entry in by_type[SearchEntry]:
        if "#Q#client#" in entry.pk:
            indexed[entry.sk].add(entry.pk.rsplit("#", 1)[1])
    for cid, c in clients.items():
        result.check(indexed.pop(cid, set()) == index_terms(search_text(c)), f"client {cid}: search terms differ")
    result.check(not indexed, f"search entries of unknown clients {sorted(indexed)}")

    # chips, as the route answers them (the repository's reads), against the recount
    repo = ClientRepository(t)
    counts = repo.counts(list(CHIP_FACETS.values()))
    chips = {name: counts[f] for name, f in CHIP_FACETS.items()}
    cutoff = new_client_cutoff(settings, now)
    chips["new"] = repo.count_created_since(cutoff)
    want = {name: sum(f in expected[cid] for cid in live) for name, f in CHIP_FACETS.items()}
    want["new"] = sum(c.created_at >= cutoff for c in live.values())
    result.check(chips == want, f"chips {chips} != recount {want}")

    # categories and segments
    categories = {i.id: i for i in by_type[CategoryItem]}
    for cat in categories.values():
        if cat.deleted_at is None:
            carried = sum(cat.id in c.category_ids for c in live.values())
            result.check(int(cat.clients_count) == carried,
                         f"category {cat.id}: clients_count {cat.clients_count}, recount {carried}")
    links = {(i.segment_id, i.pk) for i in by_type[SegmentLinkItem]}
    segments = {i.id: i for i in by_type[SegmentItem]}
    for seg in segments.values():
        members = entries.get(("segment", seg.id), {})
        for cid, entry in members.items():
            client = clients.get(cid)
            result.check(client is not None and entry.live == (not client.is_archived),
                         f"segment {seg.id} entry of {cid}: live={entry.live}")
            result.check((seg.id, keys.client_pk(t, cid)) in links, f"segment {seg.id} entry of {cid} lacks its link")
        for segment_id, pk in links:
            if segment_id == seg.id:
                result.check(pk.rsplit("#", 1)[-1] in members, f"segment {seg.id} link {pk} lacks its entry")
        if seg.deleted_at is None:
            carried = sum(cid in live for cid in members)
            result.check(int(seg.client_count) == carried,
                         f"segment {seg.id}: client_count {seg.client_count}, recount {carried}")

    # contacts
    contacts = defaultdict(list)
    for item in by_type[ContactItem]:
        contacts[item.client_id].append(contact_of(item))
    for c in clients.values():
        alive = [k for k in contacts.get(c.id, []) if not k.is_deleted]
        primaries = [k.id for k in alive if k.is_primary]
        result.check(len(primaries) <= 1, f"client {c.id} has primaries {primaries}")
        summary = c.primary_contact.id if c.primary_contact else None
        result.check(summary == (primaries[0] if primaries else None),
                     f"client {c.id}: primary_contact {summary}, primary contacts {primaries}")
        for k in contacts.get(c.id, []):
            result.check(keys.contact_number_pk(t, k.contact_number) in numbers,
                         f"contact {k.id} lacks its number item")

    # communications and threads
    comms = defaultdict(list)
    for item in by_type[CommunicationItem]:
        comms[item.client_id].append(communication_of(item))
    threads = defaultdict(list)
    for item in by_type[ThreadItem]:
        threads[item.client_id].append(item)
    for c in clients.values():
        _, average = response_times(comms.get(c.id, []))
        result.check(c.avg_response_time_minutes == average,
                     f"client {c.id}: avg_response_time {c.avg_response_time_minutes}, recount {average}")
        stats = thread_stats(comms.get(c.id, []))
        for thread in threads.get(c.id, []):
            count = stats.get(thread.id, (0, None, None))[0]
            result.check(int(thread.messages_count) == count,
                         f"thread {thread.id}: messages_count {thread.messages_count}, recount {count}")

    # idempotency keys
    epoch = now.timestamp() if now else time.time()
    for key in by_type[IdempotencyItem]:
        if key.state == "pending":
            result.check(key.lease_until is not None and float(key.lease_until) <= epoch + lease_seconds,
                         f"idempotency key {key.pk} pending without a lease that lapses")
        else:
            result.check(key.status_code is not None and int(key.status_code) < 500,
                         f"idempotency key {key.pk} stored the answer {key.status_code}")

    result.snapshot = {
        "clients": {cid: (c.client_number, c.status, c.version, sorted(c.category_ids), sorted(c.tags),
                          c.primary_contact.id if c.primary_contact else None, c.avg_response_time_minutes)
                    for cid, c in clients.items()},
        "counters": dict(shards), "chips": chips,
        "categories": {i: int(cat.clients_count) for i, cat in categories.items()},
        "segments": {i: int(seg.client_count) for i, seg in segments.items()},
        "contacts": {cid: sorted((k.email, k.is_primary, k.is_deleted) for k in ks) for cid, ks in contacts.items()},
        "communications": {cid: len(cs) for cid, cs in comms.items()},
        "threads": {t_.id: int(t_.messages_count) for ts in threads.values() for t_ in ts},
    }
    return result


def assert_consistent(tenant_id: str = "t1", **kwargs) -> Audit:
    """The audit, failing the test with every problem found."""
    found = audit(tenant_id, **kwargs)
    assert not found.problems, "\n".join(found.problems[:40])
    return found
