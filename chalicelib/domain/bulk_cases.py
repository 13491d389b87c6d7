"""Bulk actions on up to 500 clients: each client changed through its single-client use case, one result per id."""
from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import client_cases, segment_cases
from chalicelib.domain.categories import Tree
from chalicelib.domain.category_cases import check_assignable, tree_of
from chalicelib.domain.clients import Client
from chalicelib.domain.errors import Conflict, DomainError, NotFound, Unavailable, ValidationFailed
from chalicelib.domain.ports import ClientStore, Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.values import utcnow

log = logging.getLogger(__name__)

MAX_IDS = 500
WORKERS = 8  # clients changed at once: each is its own transaction, so they overlap without sharing an item
ACTIONS = ("change_status", "archive", "restore", "add_category", "remove_category", "add_tag", "remove_tag",
           "add_to_segment")
NOT_ATTEMPTED = "not attempted: the request ran out of time first; nothing was changed for this client, send it again"
Changes = Callable[[Client], dict[str, Any]]  # the fields to write, from the client as read
Change = Callable[[Stores, str], Any]  # one client's change, through stores primed for that client


@dataclass(frozen=True)
class Result:
    """What happened to one id of the request: `error` None when the action holds for the client."""

    client_id: str
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def public(self) -> dict[str, Any]:
        error = None if self.error is None else {"code": self.error.code, "message": self.error.message}
        return {"client_id": self.client_id, "ok": self.ok, "error": error}


@dataclass(frozen=True)
class Outcome:
    results: list[Result]  # one per id of the request, in its order (a repeated id repeats its result)

    def public(self) -> dict[str, Any]:
        succeeded = sum(r.ok for r in self.results)
        return {"succeeded": succeeded, "failed": len(self.results) - succeeded,
                "results": [r.public() for r in self.results]}


def seconds_for_clients() -> float:
    """How long clients may be started: the request's database budget (DB_RETRY_BUDGET, cut to end an attempt and
    a second before FUNCTION_TIMEOUT; every call of the request shares it) less one attempt, so that the last
    client started can still finish inside it."""
    from chalicelib.config import get_settings  # read at first use, never at import

    settings = get_settings()
    return max(1.0, settings.request_db_budget - settings.db_attempt_seconds)


class _Once:
    """A store whose `reads` are made once for the whole bulk (every client is decided on the same rules); its
    other methods are the store's own."""

    def __init__(self, store: Any, *reads: str):
        self._store, self._reads, self._memo = store, reads, dict[tuple[str, tuple[Any, ...]], Any]()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in self._reads:
            return method

        def once(*args: Any) -> Any:
            if (name, args) not in self._memo:
                self._memo[name, args] = method(*args)
            return self._memo[name, args]
        return once


class _Primed:
    """One client's store: the first read answers from the batch read (an id it did not find is not found, as
    the single route says, without reading again); a retry after a lost race reads afresh, so it decides on the
    state that won. Its other methods are the store's own."""

    def __init__(self, store: ClientStore, client_id: str, read: Client | None):
        self._store, self._id, self._read, self._fresh = store, client_id, read, True

    def get(self, client_id: str) -> Client:
        if client_id != self._id or not self._fresh:
            return self._store.get(client_id)
        self._fresh = False
        if self._read is None:
            raise NotFound(f"client {client_id} not found")
        return self._read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _With:
    """The tenant's stores with some of them `replaced`: what the bulk's use cases run on."""

    def __init__(self, stores: Stores, **replaced: Any):
        self._stores, self._replaced = stores, replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._stores, name)


def _category_changes(category_id: str, add: bool) -> Changes:
    def changes(client: Client) -> dict[str, Any]:
        if (category_id in client.category_ids) == add:
            return {}  # holds already: nothing to write
        kept = [c for c in client.category_ids if c != category_id]
        return {"category_ids": [*kept, category_id] if add else kept}
    return changes


def _tag_changes(tag: str, add: bool) -> Changes:
    """Tags compare ignoring case, as the `tag` filter does: adding `VIP` to a client tagged `vip` changes nothing,
    removing `VIP` removes `vip`."""
    folded = tag.casefold()

    def changes(client: Client) -> dict[str, Any]:
        if any(t.casefold() == folded for t in client.tags) == add:
            return {}
        kept = [t for t in client.tags if t.casefold() != folded]
        return {"tags": [*kept, tag] if add else kept}
    return changes


def _checked(changes: Changes, check: Callable[[dict[str, Any]], None]) -> Changes:
    def checked(client: Client) -> dict[str, Any]:
        wanted = changes(client)
        if wanted:
            check(wanted)  # the PATCH body's own limits (at most 20 tags, 10 categories)
        return wanted
    return checked


def _target_category(tree: Tree, category_id: str, assigning: bool) -> None:
    """The category must be one of the tenant's; to be assigned, live and active (the check PATCH makes)."""
    if category_id not in tree:
        raise ValidationFailed.field("params.category_id", f"{category_id} is not a category")
    if assigning:
        try:
            check_assignable(tree, [category_id])
        except ValidationFailed as exc:
            raise ValidationFailed.field("params.category_id", exc.details[0]["message"]) from None


def bulk_action(stores: Stores, action: str, client_ids: list[str], params: dict[str, Any], *,
                check_changes: Callable[[dict[str, Any]], None] = lambda changes: None,
                seconds: float | None = None, workers: int | None = None) -> Outcome:
    """Apply `action` to each client, one result per id in request order; one bad id never blocks the rest.

    Whatever is the same for every client (the category, the segment) is checked first and refuses the whole
    request before anything changes. The clients are read in one batch; each is then changed by the use case
    of its single-client route (same rules, versions and errors), `workers` at a time. No client is started
    after `seconds` (by default seconds_for_clients()): those answer `unavailable`, unchanged. `check_changes`
    raises ValidationFailed for changes a PATCH body could not carry.
    """
    shared: Stores = _With(stores, settings=_Once(stores.settings, "get", "custom_fields"),
                           categories=_Once(stores.categories, "snapshot"))
    shared.settings.get("client")  # read once, before the workers share it
    change = _plan(shared, action, params, check_changes)
    unique = list(dict.fromkeys(client_ids))
    read = stores.clients.get_many(unique, consistent=True)
    end = time.monotonic() + (seconds_for_clients() if seconds is None else seconds)

    def one(client_id: str) -> Result:
        left = end - time.monotonic()
        if left <= 0:
            return Result(client_id, Unavailable(NOT_ATTEMPTED))
        primed: Stores = _With(shared, clients=_Primed(stores.clients, client_id, read.get(client_id)))
        try:
            # One budget for this client's retries, however they nest: none runs past the bulk's time.
            retrying(lambda: change(primed, client_id), f"client {client_id}", seconds=left)
            return Result(client_id)
        except DomainError as exc:
            return Result(client_id, exc)
        except Exception:  # a defect for one client must not hide what happened to the others
            log.exception("bulk %s of client %s failed", action, client_id)
            return Result(client_id, DomainError("an internal error occurred", code="internal_error"))

    with ThreadPoolExecutor(max_workers=max(1, min(workers or WORKERS, len(unique)))) as pool:
        # Each task in its own copy of this context: the request's database budget and Idempotency-Key travel.
        futures = [pool.submit(contextvars.copy_context().run, one, cid) for cid in unique]
        done = {cid: f.result() for cid, f in zip(unique, futures, strict=False)}
    if action == "add_to_segment" and any(r.ok for r in done.values()):
        segment_cases.recount(stores, params["segment_id"])  # once, not once per member as the single route does
    return Outcome([done[cid] for cid in client_ids])


def _plan(stores: Stores, action: str, params: dict[str, Any], check: Callable[[dict[str, Any]], None]) -> Change:
    """Check what the action names and return the change of one client."""
    if action not in ACTIONS:
        raise ValidationFailed.field("action", f"must be one of {', '.join(ACTIONS)}")
    if action == "add_to_segment":
        return _segment_plan(stores, params["segment_id"])
    if action in ("archive", "restore"):
        return client_cases.archive_client if action == "archive" else client_cases.restore_client
    if action == "change_status":
        status = params["status"]
        changes: Changes = lambda client: {"status": status}  # noqa: E731 (PATCH refuses it for archived clients)
    elif action in ("add_category", "remove_category"):
        _target_category(tree_of(stores), params["category_id"], action == "add_category")
        changes = _category_changes(params["category_id"], action == "add_category")
    else:
        changes = _tag_changes(params["tag"], action == "add_tag")
    checked = _checked(changes, check)
    return lambda primed, client_id: client_cases.update_client(primed, client_id, checked)


def _segment_plan(stores: Stores, segment_id: str) -> Change:
    """The rules of adding a member by hand (segment_cases.add_member), the segment read once."""
    try:
        segment = stores.segments.get(segment_id)
    except NotFound:
        raise ValidationFailed.field("params.segment_id", f"{segment_id} is not a segment") from None
    if segment.is_dynamic:
        raise Conflict("dynamic_segment", "members of a dynamic segment come from its criteria")

    def add(primed: Stores, client_id: str) -> bool:
        client = primed.clients.get(client_id)
        if client.is_archived:
            raise ValidationFailed.field("client_id", "is archived; restore it first")
        # A client that is a member already is skipped.
        return primed.segments.add_member_once(segment.id, client, primed.actor, "manual", utcnow())
    return add
