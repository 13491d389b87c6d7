"""Client use cases: create, read, change, archive, list, count and export the tenant's clients."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from ulid import ULID

from chalicelib.domain import duplicate_cases
from chalicelib.domain.category_cases import check_assignable, tree_of, with_descendants
from chalicelib.domain.client_csv import CsvWriter
from chalicelib.domain.clients import (
    CHIP_FACETS,
    CHIPS,
    SETTINGS_CHIPS,
    Client,
    FacetRules,
    ListPlan,
    apply_changes,
    archive,
    chip_counts,
    new_client,
    new_client_cutoff,
    plan_list,
    restore,
)
from chalicelib.domain.errors import StaleVersion
from chalicelib.domain.ports import Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.scoring import Inputs, score
from chalicelib.domain.settings import ClientSettings, CustomFieldDef, LeadScoreThresholds
from chalicelib.domain.values import utcnow

EXPORT_PAGE = 100  # clients read per page of an export: one BatchGetItem's worth
Changes = dict[str, Any] | Callable[[Client], dict[str, Any]]  # the fields to write, or a function of the client read


def _check_categories(stores: Stores, wanted: list[str] | None, already: list[str]) -> None:
    if wanted and set(wanted) - set(already):
        check_assignable(tree_of(stores), wanted, already)


def create_client(stores: Stores, data: dict[str, Any], *, now: datetime | None = None,
                  allow_duplicate: bool = True) -> Client:
    """Create a client, scored as a later read shows it; a number already taken (two creates in one second) is
    drawn again. `allow_duplicate=False`: 409 `possible_duplicate` when live clients may be this one."""
    client_settings = stores.settings.get("client")
    thresholds = stores.settings.get("lead-score-thresholds")
    defs = stores.settings.custom_fields()
    _check_categories(stores, data.get("category_ids"), [])

    def attempt() -> Client:
        at = now or utcnow()
        client = build_client(data, tenant_id=stores.tenant_id, actor=stores.actor, client_settings=client_settings,
                              thresholds=thresholds, defs=defs, at=at)
        if not allow_duplicate:
            duplicate_cases.refuse_duplicates(stores, client)
        return stores.clients.create(client, FacetRules.of(client_settings, at))
    return retrying(attempt, "the client numbers")


def build_client(data: dict[str, Any], *, tenant_id: str, actor: str | None, client_settings: ClientSettings,
                 thresholds: LeadScoreThresholds, defs: list[CustomFieldDef], at: datetime,
                 scored: bool = True) -> Client:
    """A new client from validated create fields, not stored yet (create_client, imports); ValidationFailed for
    bad custom fields or pricing. `scored=False` leaves the derived figures out (an import's dry run)."""
    client = new_client(data, tenant_id=tenant_id, client_id=str(ULID.from_datetime(at)),
                        settings=client_settings, custom_fields=defs, actor=actor, now=at)
    if not scored:
        return client
    # The scoring the stream runs, over no records yet: the answer carries no placeholder figures.
    return client.model_copy(update=score(Inputs(client, [], [], [], [], [], at), thresholds).client_fields)


def get_client(stores: Stores, client_id: str) -> Client:
    """The client, archived or not; NotFound for an id the tenant has no client of."""
    return stores.clients.get(client_id)


def update_client(stores: Stores, client_id: str, changes: Changes, *,
                  expected_version: int | None = None) -> Client:
    """Write the named fields. With `expected_version` a stale read is 412; without, a race is retried.

    `changes` may be a function of the client as read (a bulk's add_tag): a retry recomputes it from the state
    that won, so a concurrent change is never overwritten with figures from a stale read.
    """
    client_settings = stores.settings.get("client")
    defs = stores.settings.custom_fields() if not callable(changes) and "custom_fields" in changes else []

    def attempt() -> Client:
        current = stores.clients.get(client_id)
        if expected_version is not None and expected_version != current.version:
            raise StaleVersion(f"the client is at version {current.version}, not {expected_version}")
        wanted = changes(current) if callable(changes) else changes
        _check_categories(stores, wanted.get("category_ids"), current.category_ids)
        updated = apply_changes(current, wanted, settings=client_settings, custom_fields=defs, now=utcnow())
        if updated.model_copy(update={"updated_at": current.updated_at}) == current:
            return current  # nothing changes: no write, no new version
        # A race lost here (maybe only to derived figures) is read again and If-Match checked again.
        return stores.clients.save(current, updated, FacetRules.of(client_settings, updated.updated_at))
    return retrying(attempt, "the client")


def update_derived(stores: Stores, client_id: str, derive: Callable[[Client], dict[str, Any]],
                   now: datetime | None = None) -> Client:
    """Write figures derived from other records (scores, revenue, response times) when they differ.

    No version bump, so a user's If-Match stays valid; a race with any other write is re-read and re-derived.
    """
    return retrying(lambda: save_derived(stores, stores.clients.get(client_id), derive, now), "the client")


def save_derived(stores: Stores, current: Client, derive: Callable[[Client], dict[str, Any]],
                 now: datetime | None = None) -> Client:
    """One attempt of update_derived on the client as read (VersionConflict when it changed since)."""
    updated = current.model_copy(update=derive(current))
    if updated == current:
        return current
    return stores.clients.save(current, updated, FacetRules.of(stores.settings.get("client"), now or utcnow()),
                               derived=True)


def archive_client(stores: Stores, client_id: str, *, expected_version: int | None = None) -> Client:
    """Soft delete: the client leaves the default list and the chips; nothing is removed. With
    `expected_version`, a client changed since that version is StaleVersion (an archived one is answered as is)."""
    return _transition(stores, client_id, archive, expected_version)


def restore_client(stores: Stores, client_id: str) -> Client:
    """Undo an archive: the status held before comes back."""
    return _transition(stores, client_id, restore)


def _transition(stores: Stores, client_id: str, change: Callable[[Client, datetime], Client],
                expected_version: int | None = None) -> Client:
    def attempt() -> Client:  # a race (a derived figure, another archive) is decided again on the new state
        current = stores.clients.get(client_id)
        now = utcnow()
        updated = change(current, now)
        if updated is current:
            return current
        if expected_version is not None and expected_version != current.version:
            raise StaleVersion(f"the client is at version {current.version}, not {expected_version}")
        return stores.clients.save(current, updated, FacetRules.of(stores.settings.get("client"), now))
    return retrying(attempt, "the client")


def _plan(stores: Stores, filters: dict[str, Any]) -> ListPlan:
    """The list's filters (GET /v1/clients without cursor and limit) as the plan the repository reads: a category
    with its descendants, and the facet groups of plan_list."""
    filters = dict(filters)
    category_id = filters.get("category_id")
    if category_id:
        tree = tree_of(stores)
        filters["category_ids"] = with_descendants(tree, category_id) if category_id in tree else [category_id]
    settings = stores.settings.get("client") if filters.get("chip") in SETTINGS_CHIPS else None
    return plan_list(filters, settings, utcnow())


def list_clients(stores: Stores, filters: dict[str, Any], limit: int,
                 after: list[str] | None = None) -> tuple[list[Client], list[str] | None]:
    """One page of the filtered, sorted list and the position the next page starts after (None at the end)."""
    return stores.clients.page(_plan(stores, filters), limit, after)


def chips(stores: Stores) -> dict[str, int]:
    """The counts of the list's quick filters: the facets' counters, and the clients created lately."""
    counted = [CHIP_FACETS[chip] for chip in CHIPS if chip != "new"]
    since = new_client_cutoff(stores.settings.get("client"), utcnow())
    return chip_counts(stores.clients.counts(counted), stores.clients.count_created_since(since))


def export_clients(stores: Stores, filters: dict[str, Any], out: IO[bytes]) -> int:
    """Write the filtered list to `out` as CSV (header, then page after page: never the whole list in memory);
    returns the number of clients written."""
    writer = CsvWriter(out, [d.key for d in stores.settings.custom_fields()])
    for page in stores.clients.pages(_plan(stores, filters), EXPORT_PAGE):
        writer.write(page)
    return writer.rows


def remove_deleted_category(stores: Stores, category_id: str) -> int:
    """After a category is deleted its clients lose it (each a normal, versioned change); safe to run again."""
    done = 0
    for client_id in list(stores.clients.client_ids(("category", category_id))):
        if category_id in stores.clients.get(client_id).category_ids:
            update_client(stores, client_id,
                          lambda client: {"category_ids": [c for c in client.category_ids if c != category_id]})
            done += 1
    return done
