"""Translation of storage failures into domain errors, in one place."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, SSLError
from pynamodb.exceptions import DeleteError, PutError, PynamoDBException, TransactWriteError, UpdateError

from chalicelib.domain.errors import Unavailable

log = logging.getLogger(__name__)

NOTHING_WRITTEN = "the database cannot be reached; nothing was written"
OUTCOME_UNKNOWN = ("the database did not answer, so the outcome is unknown: retry the same request "
                   "(a create with the same Idempotency-Key)")
# Operations that change the table: when one of them may have reached the database, its outcome is unknown.
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_WRITE_ERRORS = (PutError, UpdateError, DeleteError, TransactWriteError)
# Answers meaning "not now" rather than "no", still there after botocore's retries. TransactionConflictException:
# a single write refused because a transaction holds its item (botocore does not retry it); nothing was written.
_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                        "TransactionConflictException"})


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn 'the database cannot be reached or did not answer' into the contract's 503 `unavailable`.

    The table's own connection already raises Unavailable for its calls (connection.py); this catches the
    same failures wrapped by PynamoDB (PutError, TransactWriteError, ... with a botocore `.cause`) elsewhere.
    """
    try:
        yield
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        failure = unavailable(exc)
        if failure is None:
            raise
        raise failure from exc


def unavailable(exc: BaseException, write: bool | None = None, wrote_before: bool = False) -> Unavailable | None:
    """The 503 for a call that could not reach the database or got no answer; None for any other failure.

    It says nothing was written only when neither this call (`write`: it was a write; None: judge by PynamoDB's
    wrapper) nor an earlier write of the request (`wrote_before`) may have landed.
    """
    cause = _botocore_cause(exc)
    if isinstance(cause, ClientError):
        if _status(cause) < 500 and cause.response.get("Error", {}).get("Code") not in _THROTTLED:
            return None  # the database answered "no" (a condition, a validation): the repository's business
    elif not isinstance(cause, BotoCoreError):
        return None
    unknown = getattr(cause, "outcome_unknown", None)  # the connection's verdict from every attempt of the call
    if unknown is None:  # a call it did not see: judge by the last attempt
        if write is None:
            write = not isinstance(exc, PynamoDBException) or isinstance(exc, _WRITE_ERRORS)
        unknown = write and may_have_applied(cause)
    unknown = unknown or wrote_before
    log.error("database unavailable (%s): %s", "outcome unknown" if unknown else "nothing written", cause)
    return Unavailable(OUTCOME_UNKNOWN if unknown else NOTHING_WRITTEN)


def may_have_applied(exception: BaseException) -> bool:
    """Whether a call (or attempt) that failed so may have been applied: only a failure before sending is certain."""
    if isinstance(exception, ClientError):
        return _status(exception) >= 500  # the database failed while handling it
    if isinstance(exception, BotoCoreError):
        # HTTPClientError: sent, the answer did not come (read timeout, connection closed); SSLError: can't tell.
        # The other botocore errors (connection refused, connect timeout, no credentials) come before sending.
        return isinstance(exception, (HTTPClientError, SSLError))
    return True  # not botocore's own: nothing says it was not sent


def _botocore_cause(exc: BaseException) -> BaseException | None:
    """The botocore exception under PynamoDB's wrappers (`PutError.cause`, `VerboseClientError.__cause__`)."""
    cause: BaseException | None = exc.cause if isinstance(exc, PynamoDBException) else exc
    if isinstance(cause, ClientError) and isinstance(cause.__cause__, ClientError):
        cause = cause.__cause__
    return cause


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}  # botocore's timeouts carry requests' `response = None`
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0


def reason_codes(exc: PynamoDBException) -> list[str | None]:
    """Per-item cancellation codes of a failed transaction (None where the item was fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [r.code if r else None for r in reasons]
