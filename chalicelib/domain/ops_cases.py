"""Operator jobs over one tenant: `verify_tenant` reports each derived figure that differs, `recount_tenant` repairs."""
from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from chalicelib.domain import category_cases, job_cases, segment_cases
from chalicelib.domain.clients import (
    COUNTED_FACETS,
    Client,
    ClientStatus,
    ClientType,
    Facet,
    FacetRules,
    PricingTier,
    RiskLevel,
    created_day,
    facets,
    search_text,
)
from chalicelib.domain.errors import VersionConflict
from chalicelib.domain.jobs import Job, StepResult
from chalicelib.domain.ports import Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.search import index_terms
from chalicelib.domain.values import utcnow

VERIFY, RECOUNT = "verify_tenant", "recount_tenant"  # job kinds
PAGE = 200           # status entries (clients) walked per step
MAX_REPORTED = 300   # differences kept as the job's errors (the rest only counted): the job is one item of 400 KB
MAX_MESSAGE = 160    # characters of one difference's message
STATUSES: tuple[str, ...] = get_args(ClientStatus)  # the walk: every status partition in turn, by client id
# Facets whose entries the client's own transaction writes (segment entries follow the stream, `new` is pruned daily).
OWN_FACETS = frozenset({"status", "type", "tier", "risk", "tag", "category", "live", "atrisk", "highvalue"})
# Every counted entry a client could have, checked by key: an entry it should not have is found too.
COUNTED_ENTRIES = frozenset(
    {("status", v) for v in STATUSES} | {("type", v) for v in get_args(ClientType)}
    | {("tier", v) for v in get_args(PricingTier)} | {("risk", v) for v in get_args(RiskLevel)}
    | {("live", "1"), ("atrisk", "1"), ("highvalue", "1")})
FIXES = ("number_items", "facet_entries", "search_terms", "orphan_entries", "counters", "day_counters",
         "category_counts", "segment_counts")  # what recount_tenant's result counts, by kind

Deadline = Callable[[], bool]


def difference(check: str, subject: str, message: str) -> dict[str, str]:
    """One difference, as a job error entry."""
    return {"check": check, "subject": subject, "message": message[:MAX_MESSAGE]}


def expected_facets(client: Client, rules: FacetRules) -> set[Facet]:
    """The entries the client's own transaction writes for it."""
    return {f for f in facets(client, rules) if f[0] in OWN_FACETS}


def _name(facet: Facet) -> str:
    return f"{facet[0]}={facet[1]}"


@dataclass
class ClientCheck:
    """One client against what storage holds for it, read by key."""

    client: Client
    expected: set[Facet]
    entries: dict[Facet, bool]  # the checked entries that exist (expected and COUNTED_ENTRIES), each one's `live`
    number_holder: str | None   # the client its number item names (None: no item)
    terms: set[str]
    missing_terms: set[str]

    @property
    def wrong_entries(self) -> list[tuple[Facet, str]]:
        live = not self.client.is_archived
        wrong = [(f, "missing") for f in sorted(self.expected - self.entries.keys())]
        wrong += [(f, "extra: not implied by the client") for f in sorted(self.entries.keys() - self.expected)]
        wrong += [(f, f"live={self.entries[f]}, expected {live}") for f in sorted(self.expected & self.entries.keys())
                  if self.entries[f] != live]
        return wrong

    @property
    def differences(self) -> list[dict[str, str]]:
        cid, number = self.client.id, self.client.client_number
        out = []
        if self.number_holder is None:
            out.append(difference("client_number", cid, f"number item {number} missing"))
        elif self.number_holder != cid:
            out.append(difference("client_number", cid, f"number item {number} names client {self.number_holder}"))
        out += [difference("facet_entry", cid, f"{_name(f)}: {what}") for f, what in self.wrong_entries]
        if self.missing_terms:
            out.append(difference("search_terms", cid, f"{len(self.missing_terms)} of {len(self.terms)} terms missing: "
                                  + ", ".join(sorted(self.missing_terms))))
        return out

    @property
    def fixes(self) -> Counter[str]:
        """What a repair writes (a number item held by another client is not repaired: it needs a new number)."""
        return Counter({"number_items": int(self.number_holder is None), "facet_entries": len(self.wrong_entries),
                        "search_terms": len(self.missing_terms)})

    def counted_at(self, status: str) -> bool:
        """Whether the walk takes the client at its entry in `status`: at its own status's entry, or (that one
        missing) at the first it has in walk order, so a client with extra status entries counts once."""
        held = [s for s in STATUSES if ("status", s) in self.entries]
        home = self.client.status if self.client.status in held else (held[0] if held else status)
        return status == home


def check_clients(stores: Stores, clients: list[Client], rules: FacetRules) -> dict[str, ClientCheck]:
    """Each client checked: its number item, its own facet entries and counted ones, its search terms (by key)."""
    expected = {c.id: expected_facets(c, rules) for c in clients}
    entries = stores.clients.stored_entries([(f, c.id) for c in clients
                                             for f in sorted(expected[c.id] | COUNTED_ENTRIES)])
    holders = stores.clients.number_holders([c.client_number for c in clients])
    terms = {c.id: index_terms(search_text(c)) for c in clients}
    indexed = stores.clients.indexed([(t, c.id) for c in clients for t in sorted(terms[c.id])])
    mine: dict[str, dict[Facet, bool]] = {c.id: {} for c in clients}
    for (facet, cid), live in entries.items():
        mine[cid][facet] = live
    return {c.id: ClientCheck(c, expected[c.id], mine[c.id], holders.get(c.client_number), terms[c.id],
                              {t for t in terms[c.id] if (t, c.id) not in indexed}) for c in clients}


def tally(counts: dict[str, int], days: dict[str, int], client: Client, expected: set[Facet]) -> None:
    """Add a client to the walk's recount: its counted facets and categories, its creation day (not archived)."""
    if client.is_archived:
        return
    for f in expected:
        if f[0] in COUNTED_FACETS or f[0] == "category":
            key = f"{f[0]}|{f[1]}"
            counts[key] = counts.get(key, 0) + 1
    day = created_day(client)
    days[day] = days.get(day, 0) + 1


def _page(stores: Stores, state: dict) -> tuple[list[tuple[str, str]], dict]:
    """Up to PAGE (client id, status) of the status partitions from the saved cursor, and the cursor after them."""
    index, after = state.get("status", 0), state.get("after")
    page: list[tuple[str, str]] = []
    while len(page) < PAGE and index < len(STATUSES):
        want = PAGE - len(page)
        ids = list(itertools.islice(stores.clients.client_ids(("status", STATUSES[index]), after=after,
                                                              page_size=PAGE), want))
        page += [(cid, STATUSES[index]) for cid in ids]
        index, after = (index + 1, None) if len(ids) < want else (index, ids[-1])
    return page, {"status": index, "after": after}


def _step(stores: Stores, job: Job, repair: bool) -> StepResult:
    counts, days = dict(job.state.get("counts", {})), dict(job.state.get("days", {}))
    if job.state.get("status", 0) >= len(STATUSES):
        return _outcome(job, dict(job.state), 0, 0, *_figures(stores, counts, days, repair), repair, done=True)
    rules = FacetRules.of(stores.settings.get("client"), utcnow())
    page, cursor = _page(stores, job.state)
    clients = stores.clients.get_many(list(dict.fromkeys(cid for cid, _ in page)), consistent=True)
    checks = check_clients(stores, list(clients.values()), rules)
    found: list[dict[str, str]] = []
    fixed: Counter[str] = Counter()
    counted = 0
    for cid, status in page:
        check = checks.get(cid)
        if check is None:
            found.append(difference("facet_entry", cid, f"status={status}: entry of a client that does not exist"))
            if repair:
                fixed["orphan_entries"] += _drop_orphan(stores, ("status", status), cid)
            continue
        if not check.counted_at(status):
            continue  # an extra status entry: reported (and repaired) where the client is counted
        counted += 1
        found += check.differences
        if repair and any(check.fixes.values()):
            done, check = _repair(stores, check, rules)
            fixed += done
        tally(counts, days, check.client, check.expected)
    state = {**cursor, "counts": counts, "days": days}
    return _outcome(job, state, len(page), counted, found, fixed, repair, done=False)


def _outcome(job: Job, state: dict, processed: int, counted: int, found: list[dict[str, str]], fixed: Counter[str],
             repair: bool, done: bool) -> StepResult:
    room = max(0, MAX_REPORTED - len(job.errors))
    result = {"clients": counted, "differences": len(found), "unreported": max(0, len(found) - room)}
    if repair:
        result |= {kind: fixed[kind] for kind in FIXES}
    return StepResult(state=state, processed=processed, result=result, errors=found[:room], done=done)


def _repair(stores: Stores, check: ClientCheck, rules: FacetRules) -> tuple[Counter[str], ClientCheck]:
    """Rewrite what the client lacks; a client changed meanwhile is read and checked again."""
    first = [check]

    def attempt() -> tuple[Counter[str], ClientCheck]:
        current = first.pop() if first else _recheck(stores, check, rules)
        if not any(current.fixes.values()):
            return Counter(), current
        stores.clients.repair(current.client, set(current.entries), current.expected,
                              number=current.number_holder is None)
        return current.fixes, current

    return retrying(attempt, f"client {check.client.id}")


def _recheck(stores: Stores, check: ClientCheck, rules: FacetRules) -> ClientCheck:
    client = stores.clients.get_many([check.client.id], consistent=True).get(check.client.id, check.client)
    return check_clients(stores, [client], rules)[client.id]


def _drop_orphan(stores: Stores, facet: Facet, client_id: str) -> int:
    try:
        stores.clients.drop_orphan_entry(facet, client_id)
    except VersionConflict:  # the client exists by now: its entry is its own
        return 0
    return 1


def _figures(stores: Stores, counts: dict[str, int], days: dict[str, int], repair: bool
             ) -> tuple[list[dict[str, str]], Counter[str]]:
    """The final step: counter shards, day counters, category and segment counts against the walk's recount."""
    recount = {(k.partition("|")[0], k.partition("|")[2]): n for k, n in counts.items()}
    found: list[dict[str, str]] = []
    fixed: Counter[str] = Counter()
    counted = sorted({f for f in recount if f[0] in COUNTED_FACETS} | COUNTED_ENTRIES)
    for facet, have in stores.clients.counter_totals(counted).items():
        want = recount.get(facet, 0)
        if have != want:
            found.append(difference("counter", _name(facet), f"shards sum to {have}, recount {want}"))
            if repair:
                stores.clients.add_to_counter(facet, want - have)
                fixed["counters"] += 1
    stored_days = stores.clients.day_totals()
    for day in sorted(stored_days.keys() | days.keys()):
        have, want = stored_days.get(day, 0), days.get(day, 0)
        if have != want:
            found.append(difference("day_counter", day, f"counters sum to {have}, recount {want}"))
            if repair:
                stores.clients.add_to_day_counter(day, want - have)
                fixed["day_counters"] += 1
    categories, _ = stores.categories.snapshot()
    for category in (c for c in categories if c.deleted_at is None):
        want = recount.get(("category", category.id), 0)
        if category.clients_count != want:
            found.append(difference("category_count", category.id,
                                    f"clients_count {category.clients_count}, recount {want}"))
        if repair:
            now = category_cases.recount(stores, category.id)
            fixed["category_counts"] += now != category.clients_count
            if now != want:  # a live entry of a client not carrying the category: found by no key
                found.append(difference("category_entries", category.id,
                                        f"{now} live entries, {want} clients carry it (not repaired)"))
    for segment in stores.segments.all():
        if segment.refreshing:
            continue  # its count is the members found so far
        members = stores.segments.count_members(segment.id)
        if segment.client_count != members:
            found.append(difference("segment_count", segment.id,
                                    f"client_count {segment.client_count}, {members} live members"))
            if repair:
                segment_cases.recount(stores, segment.id)
                fixed["segment_counts"] += 1
    return found, fixed


def verify_step(stores: Stores, job: Job, deadline: Deadline) -> StepResult:
    """One page of the walk checked (or, once walked, the counters and counts): differences reported, none fixed."""
    return _step(stores, job, repair=False)


def recount_step(stores: Stores, job: Job, deadline: Deadline) -> StepResult:
    """One page of the walk checked and repaired (or, once walked, the counters and counts set to the recount)."""
    return _step(stores, job, repair=True)


def walk_size(stores: Stores) -> int:
    """The status entries the walk reads: the live statuses' counters and the archived partition's entries."""
    live = stores.clients.counts([("status", s) for s in STATUSES if s != "archived"])
    return sum(live.values()) + stores.clients.count_entries(("status", "archived"))


def start_verify(stores: Stores, *, enqueue: bool = True) -> Job:
    """A `verify_tenant` job of the tenant; `enqueue=False` for `job_cases.run_inline` to run it here."""
    return job_cases.start_job(stores, VERIFY, {}, total=walk_size(stores), enqueue=enqueue)


def start_recount(stores: Stores, *, enqueue: bool = True) -> Job:
    """A `recount_tenant` job of the tenant; `enqueue=False` for `job_cases.run_inline` to run it here."""
    return job_cases.start_job(stores, RECOUNT, {}, total=walk_size(stores), enqueue=enqueue)


job_cases.register_kind(VERIFY, verify_step)
job_cases.register_kind(RECOUNT, recount_step)
