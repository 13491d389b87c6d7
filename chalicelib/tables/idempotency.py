"""Idempotency-Key records: claim the key for a lease, run the request once, replay its answer for 24 hours."""
from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.config import get_settings
from chalicelib.domain.errors import Conflict, InProgress, Unavailable
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.connection import bookkeeping
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import IdempotencyItem

log = logging.getLogger(__name__)

TTL_SECONDS = 24 * 3600
LEASE_MARGIN = 5  # seconds beyond the function's timeout: clock skew between the hosts that claim a key


@dataclass(frozen=True)
class Claim:
    """This request holds the key until `lease_until`; `token` tells its writes from a later holder's."""

    pk: str
    token: str
    lease_until: float


@dataclass(frozen=True)
class Replay:
    """The key's request ran already: its stored answer."""

    status_code: int
    body: str


_held: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


@contextlib.contextmanager
def holding(claim: Claim | None) -> Iterator[None]:
    """Transactions committed inside are fenced by the claim (see `fence`); None: by no claim."""
    token = _held.set(claim)
    try:
        yield
    finally:
        _held.reset(token)


def fence(tx: TransactWrite) -> None:
    """Within a request holding a key, mark the key `wrote` in the same transaction, only while the claim is ours.

    So a retry after a lost answer knows whether the first request's writes landed, and a request whose lease
    lapsed (and was taken over) cannot write any more.
    """
    claim = _held.get()
    if claim is not None:
        tx.update(IdempotencyItem(claim.pk, keys.UNIQUE_SK), actions=[IdempotencyItem.wrote.set(True)],
                  condition=IdempotencyItem.owner == claim.token)


def _lapsed(now: float):
    return IdempotencyItem.lease_until.does_not_exist() | (IdempotencyItem.lease_until < now)


class IdempotencyStore:
    clock: Callable[[], float] = staticmethod(time.time)  # tests move it forward

    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def claim(self, key: str, fingerprint: str) -> Claim | Replay:
        """Claim the key for this request, or answer what its first request stored.

        A key is free when unknown, expired, or pending with a lapsed lease and no writes landed (its request
        died: a Lambda killed at its timeout, a release that could not reach the database).
        """
        pk = keys.idempotency_pk(self.tenant_id, key)
        now = self.clock()
        claim = Claim(pk, uuid.uuid4().hex, now + get_settings().function_timeout + LEASE_MARGIN)
        item = IdempotencyItem(pk, keys.UNIQUE_SK, state="pending", fingerprint=fingerprint, owner=claim.token,
                               lease_until=claim.lease_until, expires_at=int(now) + TTL_SECONDS)
        abandoned = ((IdempotencyItem.state == "pending") & (IdempotencyItem.fingerprint == fingerprint)
                     & _lapsed(now) & IdempotencyItem.wrote.does_not_exist())
        with bookkeeping(), storage_errors():
            try:
                item.save(condition=IdempotencyItem.pk.does_not_exist() | (IdempotencyItem.expires_at < now)
                          | abandoned)
                return claim
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
            try:
                existing = IdempotencyItem.get(pk, keys.UNIQUE_SK, consistent_read=True)
            except DoesNotExist:  # expired and removed meanwhile
                raise _in_progress(now, None) from None
        if existing.owner == claim.token:
            return claim  # an attempt whose answer was lost landed: botocore's retry then failed the condition
        if existing.fingerprint != fingerprint:
            raise Conflict("idempotency_key_reused", "this Idempotency-Key was used with another request")
        if existing.state == "done":
            return Replay(int(existing.status_code), existing.body)
        if existing.wrote and (existing.lease_until or 0) < now:
            raise Conflict("idempotency_answer_lost", "the request with this Idempotency-Key was applied but its "
                                                      "answer was lost; read the resource instead of creating it")
        raise _in_progress(now, existing.lease_until)

    def complete(self, claim: Claim, status_code: int, body: str) -> None:
        """Store the answer for replays. Never fails the request: its answer is true even if it cannot be stored
        (then a retry after the lease answers idempotency_answer_lost)."""
        item = IdempotencyItem(claim.pk, keys.UNIQUE_SK)
        try:
            with bookkeeping(), storage_errors():
                if not _if_held(item.update, claim, actions=[IdempotencyItem.state.set("done"),
                                                             IdempotencyItem.status_code.set(status_code),
                                                             IdempotencyItem.body.set(body)]):
                    log.warning("idempotency key %s was taken over before its answer was stored", claim.pk)
        except Unavailable as exc:
            log.error("answer for idempotency key %s not stored: %s", claim.pk, exc.message)

    def release(self, claim: Claim) -> None:
        """The request failed: free the key so a retry can run; if its writes landed, end the lease instead
        (a retry then answers idempotency_answer_lost at once rather than running the request twice).

        Never fails: the request's own error is its answer, and if the database cannot be reached the lease
        frees the key after the function's timeout anyway.
        """
        item = IdempotencyItem(claim.pk, keys.UNIQUE_SK)
        try:
            with bookkeeping(), storage_errors():
                if not _if_held(item.delete, claim, IdempotencyItem.wrote.does_not_exist()):
                    _if_held(item.update, claim, actions=[IdempotencyItem.lease_until.set(0)])
        except Unavailable as exc:
            log.error("idempotency key %s not released (its lease frees it): %s", claim.pk, exc.message)


def _if_held(write: Callable, claim: Claim, condition=None, **kwargs) -> bool:
    """Run `write` on the key's item if `claim` still holds it (and `condition`); False when it does not."""
    held = IdempotencyItem.owner == claim.token
    try:
        write(condition=held & condition if condition is not None else held, **kwargs)
        return True
    except (PutError, UpdateError, DeleteError) as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False


def _in_progress(now: float, lease_until: float | None) -> InProgress:
    """409 `idempotency_in_progress`, with Retry-After: when the running request's lease lapses (at most)."""
    error = InProgress("idempotency_in_progress", "a request with this Idempotency-Key is still running")
    error.retry_after = max(1, math.ceil((lease_until or now) - now))
    return error
