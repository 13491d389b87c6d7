"""The one way to write several items at once: transactions retried when another transaction held an item."""
from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.domain.errors import VersionConflict
from chalicelib.domain.retry import retrying
from chalicelib.tables.base import TableItem
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.idempotency import fence


class TransactionRace(VersionConflict):
    """Another transaction held one of the items (often a shared counter), or DynamoDB throttled one of them:
    nothing was written, run it again."""


# Cancellation reasons meaning "not now" rather than "no": the whole transaction is run again after a backoff.
# Throttling cancels a transaction with a reason per item (botocore's retries never see it as throttling).
RETRIED_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def _raced(exc: TransactWriteError) -> bool:
    codes = set(reason_codes(exc))
    return bool(codes & RETRIED_REASONS) and "ConditionalCheckFailed" not in codes


def commit(build: Callable[[TransactWrite], None]) -> None:
    """Run a transaction, retrying conflicts with other transactions on the shared counters."""
    def attempt() -> None:
        try:
            with storage_errors(), TransactWrite(connection=TableItem._get_connection().connection) as tx:
                build(tx)
                fence(tx)  # inside an Idempotency-Key request: mark the key in the same transaction
        except TransactWriteError as exc:
            if _raced(exc):
                raise TransactionRace("another transaction held an item, or it was throttled") from exc
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


def send_built(tx: TransactWrite) -> None:
    """Send a transaction built already (see commit: the same retry of conflicts on shared counters)."""
    def attempt() -> None:
        try:
            with storage_errors(), tx:
                pass
        except TransactWriteError as exc:
            if _raced(exc):
                raise TransactionRace("another transaction held an item, or it was throttled") from exc
            raise
    retrying(attempt, "a shared item")
