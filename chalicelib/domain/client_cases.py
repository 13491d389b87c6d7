"""Client use cases: plain functions over repositories passed in, raising domain errors."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from ulid import ULID

from chalicelib.domain import clients as dc
from chalicelib.domain.category_cases import CategoryStore, check_assignable, tree_of, with_descendants
from chalicelib.domain.client_csv import CsvWriter
from chalicelib.domain.errors import StaleVersion, VersionConflict
from chalicelib.domain.retry import retrying
from chalicelib.domain.scoring import Inputs, score
from chalicelib.domain.settings import ClientSettings, CustomFieldDef
from chalicelib.domain.values import utcnow


class NumberTaken(VersionConflict):
    """Raised by a repository when a generated number exists already: drawn again, like any lost race."""


class ClientStore(Protocol):
    def get(self, client_id: str) -> dc.Client: ...
    def create(self, client: dc.Client, rules: dc.FacetRules) -> dc.Client: ...
    def save(self, old: dc.Client, new: dc.Client, rules: dc.FacetRules, derived: bool = False) -> dc.Client: ...


class SettingsStore(Protocol):
    def get(self, name: str) -> Any: ...
    def custom_fields(self) -> list[CustomFieldDef]: ...


def _check_categories(categories: CategoryStore, wanted: list[str] | None, already: list[str]) -> None:
    if wanted and set(wanted) - set(already):
        check_assignable(tree_of(categories), wanted, already)


def create_client(clients: ClientStore, settings: SettingsStore, data: dict[str, Any], *, tenant_id: str,
                  actor: str | None, categories: CategoryStore, now: datetime | None = None) -> dc.Client:
    """Create a client, scored as a later read shows it; a number already taken (two creates in one second) is
    drawn again."""
    client_settings: ClientSettings = settings.get("client")
    thresholds = settings.get("lead-score-thresholds")
    defs = settings.custom_fields()
    _check_categories(categories, data.get("category_ids"), [])

    def attempt() -> dc.Client:
        at = now or utcnow()
        client = build_client(data, tenant_id=tenant_id, actor=actor, client_settings=client_settings,
                              thresholds=thresholds, defs=defs, at=at)
        return clients.create(client, dc.FacetRules.of(client_settings, at))
    return retrying(attempt, "the client numbers")


def build_client(data: dict[str, Any], *, tenant_id: str, actor: str | None, client_settings: ClientSettings,
                 thresholds: Any, defs: list[CustomFieldDef], at: datetime, scored: bool = True) -> dc.Client:
    """A new client from validated create fields, not stored yet (create_client, imports); ValidationFailed for
    bad custom fields or pricing. `scored=False` leaves the derived figures out (an import's dry run)."""
    client = dc.new_client(data, tenant_id=tenant_id, client_id=str(ULID.from_datetime(at)),
                           settings=client_settings, custom_fields=defs, actor=actor, now=at)
    if not scored:
        return client
    # The scoring the stream runs, over no records yet: the answer carries no placeholder figures.
    return client.model_copy(update=score(Inputs(client, [], [], [], [], [], at), thresholds).client_fields)


def update_client(clients: ClientStore, settings: SettingsStore, client_id: str,
                  changes: dict[str, Any] | Callable[[dc.Client], dict[str, Any]], *,
                  expected_version: int | None, categories: CategoryStore) -> dc.Client:
    """Write the named fields. With `expected_version` a stale read is 412; without, a race is retried.

    `changes` may be a function of the client as read (a bulk's add_tag): a retry recomputes it from the state
    that won, so a concurrent change is never overwritten with figures from a stale read.
    """
    client_settings: ClientSettings = settings.get("client")
    defs = settings.custom_fields() if not callable(changes) and "custom_fields" in changes else []

    def attempt() -> dc.Client:
        current = clients.get(client_id)
        if expected_version is not None and expected_version != current.version:
            raise StaleVersion(f"the client is at version {current.version}, not {expected_version}")
        wanted = changes(current) if callable(changes) else changes
        _check_categories(categories, wanted.get("category_ids"), current.category_ids)
        updated = dc.apply_changes(current, wanted, settings=client_settings, custom_fields=defs, now=utcnow())
        if updated.model_copy(update={"updated_at": current.updated_at}) == current:
            return current  # nothing changes: no write, no new version
        # A race lost here (maybe only to derived figures) is read again and If-Match checked again.
        return clients.save(current, updated, dc.FacetRules.of(client_settings, updated.updated_at))
    return retrying(attempt, "the client")


def update_derived(clients: ClientStore, settings: SettingsStore, client_id: str,
                   derive: Callable[[dc.Client], dict[str, Any]], now: datetime | None = None) -> dc.Client:
    """Write figures derived from other records (scores, revenue, response times) when they differ.

    No version bump, so a user's If-Match stays valid; a race with any other write is re-read and re-derived.
    """
    return retrying(lambda: save_derived(clients, settings, clients.get(client_id), derive, now), "the client")


def save_derived(clients: ClientStore, settings: SettingsStore, current: dc.Client,
                 derive: Callable[[dc.Client], dict[str, Any]], now: datetime | None = None) -> dc.Client:
    """One attempt of update_derived on the client as read (VersionConflict when it changed since)."""
    updated = current.model_copy(update=derive(current))
    if updated == current:
        return current
    return clients.save(current, updated, dc.FacetRules.of(settings.get("client"), now or utcnow()),
                        derived=True)


def archive_client(clients: ClientStore, settings: SettingsStore, client_id: str) -> dc.Client:
    """Soft delete: the client leaves the default list and the chips; nothing is removed."""
    return _transition(clients, settings, client_id, dc.archive)


def restore_client(clients: ClientStore, settings: SettingsStore, client_id: str) -> dc.Client:
    """Undo an archive: the status held before comes back."""
    return _transition(clients, settings, client_id, dc.restore)


def _transition(clients: ClientStore, settings: SettingsStore, client_id: str, change) -> dc.Client:
    def attempt() -> dc.Client:  # a race (a derived figure, another archive) is decided again on the new state
        current = clients.get(client_id)
        now = utcnow()
        updated = change(current, now)
        if updated is current:
            return current
        return clients.save(current, updated, dc.FacetRules.of(settings.get("client"), now))
    return retrying(attempt, "the client")


@dataclass
class ListPlan:
    """Which facet partitions answer a list: a union per group, every group must hold."""

    groups: list[list[tuple[str, str]]]
    sort: str
    descending: bool
    q: str | None
    created_since: datetime | None
    revenue_at_least: Any


def plan_list(filters: dict[str, Any], settings: ClientSettings, now: datetime) -> ListPlan:
    """Turn list filters into facet groups; archived clients are left out unless a status asks for them."""
    groups: list[list[tuple[str, str]]] = []
    statuses = filters.get("status")
    groups.append([("status", s) for s in statuses] if statuses else [("live", "1")])
    for param, facet in (("type", "type"), ("pricing_tier", "tier"), ("risk_level", "risk")):
        if filters.get(param):
            groups.append([(facet, v) for v in filters[param]])
    if filters.get("tag"):
        groups.append([("tag", filters["tag"].casefold())])
    if filters.get("category_ids"):
        groups.append([("category", c) for c in filters["category_ids"]])
    if filters.get("segment_id"):
        groups.append([("segment", filters["segment_id"])])
    chip = filters.get("chip")
    if chip and chip != "all":
        groups.append([dc.CHIP_FACETS[chip]])
    sort = filters.get("sort") or "name"
    return ListPlan(
        groups=groups, sort=sort.lstrip("-"), descending=sort.startswith("-"), q=filters.get("q"),
        created_since=dc.new_client_cutoff(settings, now) if chip == "new" else None,
        revenue_at_least=settings.high_value_threshold if chip == "high_value" else None,
    )


def passes(plan: ListPlan, client: dc.Client) -> bool:
    """Checks the facets cannot make by key: time- and threshold-dependent chips."""
    if plan.created_since and client.created_at < plan.created_since:
        return False
    if plan.revenue_at_least is not None and client.lifetime_revenue < plan.revenue_at_least:
        return False
    return True


@dataclass
class ListQuery:
    """A client list request resolved into facet groups: each group is a union of facet partitions."""

    groups: list[list[tuple[str, str]]]
    sort: str = "name"
    descending: bool = False
    q: str | None = None
    check: Callable[[dc.Client], bool] = lambda c: True
    estimate: Callable[[list[tuple[str, str]]], int] = lambda g: 0
    after: list[str] | None = None  # [sort value, client id] of the last client already answered


EXPORT_PAGE = 100  # clients read per page of an export: one BatchGetItem's worth


def list_query(stores: Any, filters: dict[str, Any], *, after: list[str] | None = None,
               now: datetime | None = None) -> ListQuery:
    """The list's filters (GET /v1/clients without cursor and limit) as the query the repository answers: a
    category with its descendants, plan_list's facet groups, and the counters that let the smallest group drive."""
    filters = dict(filters)
    category_id = filters.get("category_id")
    if category_id:
        tree = tree_of(stores.categories)
        filters["category_ids"] = with_descendants(tree, category_id) if category_id in tree else [category_id]
    plan = plan_list(filters, stores.settings.get("client"), now or utcnow())
    known = stores.clients.counts([f for g in plan.groups for f in g if f[0] in dc.COUNTED_FACETS])
    return ListQuery(groups=plan.groups, sort=plan.sort, descending=plan.descending, q=plan.q,
                     check=lambda c: passes(plan, c), estimate=lambda group: sum(known.get(f, 0) for f in group),
                     after=after)


def list_clients(stores: Any, filters: dict[str, Any], limit: int,
                 after: list[str] | None = None) -> tuple[list[dc.Client], list[str] | None]:
    """One page of the filtered, sorted list and the position the next page starts after (None at the end)."""
    return stores.clients.list(list_query(stores, filters, after=after), limit)


def iter_clients(stores: Any, filters: dict[str, Any], page_size: int | None = None) -> Iterator[list[dc.Client]]:
    """The whole filtered list in the list's order, a page at a time (each page read like one page of the list)."""
    return stores.clients.iter_clients(list_query(stores, filters), page_size or EXPORT_PAGE)


def export_clients(stores: Any, filters: dict[str, Any], out: BinaryIO) -> int:
    """Write the filtered list to `out` as CSV (header, then page after page: never the whole list in memory);
    returns the number of clients written."""
    writer = CsvWriter(out, [d.key for d in stores.settings.custom_fields()])
    for page in iter_clients(stores, filters):
        writer.write(page)
    return writer.rows


def chip_counts(counts: dict[tuple[str, str], int], new_count: int) -> dict[str, int]:
    return {"all": counts[("live", "1")], "vip": counts[("tier", "vip")],
            "high_value": counts[("highvalue", "1")], "at_risk": counts[("atrisk", "1")],
            "new": new_count, "inactive": counts[("status", "inactive")]}


def remove_deleted_category(stores: Any, category_id: str) -> int:
    """After a category is deleted its clients lose it (each a normal, versioned change); safe to run again."""
    done = 0
    for entry in list(stores.clients.entries(("category", category_id))):
        client = stores.clients.get(entry.client_id)
        if category_id in client.category_ids:
            update_client(stores.clients, stores.settings, client.id,
                          {"category_ids": [c for c in client.category_ids if c != category_id]},
                          expected_version=None, categories=stores.categories)
            done += 1
    return done
