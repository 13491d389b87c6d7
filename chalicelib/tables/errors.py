"""Translation of storage failures into domain errors, in one place."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, PutError, PynamoDBException, TransactWriteError, UpdateError

from chalicelib.domain.errors import Unavailable
from chalicelib.tables.connection import may_have_applied

log = logging.getLogger(__name__)

NOTHING_WRITTEN = "the database cannot be reached; nothing was written"
OUTCOME_UNKNOWN = ("the database did not answer, so the outcome is unknown: retry the same request "
                   "(a create with the same Idempotency-Key)")
_WRITE_ERRORS = (PutError, UpdateError, DeleteError, TransactWriteError)
# Answers meaning "not now" rather than "no": the database refused or failed the request after botocore's retries.
_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn 'the database cannot be reached or did not answer' into the contract's 503 `unavailable`."""
    try:
        yield
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        failure = unavailable(exc)
        if failure is None:
            raise
        log.error("database unavailable: %s", exc)
        raise failure from exc


def unavailable(exc: BaseException) -> Unavailable | None:
    """The 503 for a failure to reach the database, saying whether anything may have been written; else None."""
    cause = _botocore_cause(exc)
    if isinstance(cause, ClientError):
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if status < 500 and cause.response.get("Error", {}).get("Code") not in _THROTTLED:
            return None  # the database answered "no" (a condition, a validation): the repository's business
    elif not isinstance(cause, BotoCoreError):
        return None
    return Unavailable(OUTCOME_UNKNOWN if _outcome_unknown(exc, cause) else NOTHING_WRITTEN)


def _botocore_cause(exc: BaseException) -> BaseException | None:
    """The botocore exception under PynamoDB's wrappers (`PutError.cause`, `VerboseClientError.__cause__`)."""
    if isinstance(exc, PynamoDBException):
        exc = exc.cause
    if isinstance(exc, ClientError) and isinstance(exc.__cause__, ClientError):
        exc = exc.__cause__
    return exc


def _outcome_unknown(exc: BaseException, cause: BaseException) -> bool:
    verdict = getattr(cause, "outcome_unknown", None)  # set by the connection's hooks from every attempt of the call
    if verdict is not None:
        return verdict
    # A call the hooks did not see (another connection): judge by its last attempt and the kind of call it was.
    if isinstance(exc, PynamoDBException) and not isinstance(exc, _WRITE_ERRORS):
        return False  # a read (GetError, QueryError, TransactGetError...) writes nothing
    if isinstance(cause, ClientError):
        return may_have_applied(None, cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    return may_have_applied(cause)


def reason_codes(exc: PynamoDBException) -> list[str | None]:
    """Per-item cancellation codes of a failed transaction (None where the item was fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [r.code if r else None for r in reasons]
