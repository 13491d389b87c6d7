"""Translation of storage failures into domain errors, in one place."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from botocore.exceptions import BotoCoreError, EndpointConnectionError
from pynamodb.exceptions import PynamoDBConnectionError, PynamoDBException

from chalicelib.domain.errors import Unavailable

log = logging.getLogger(__name__)


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn 'the database cannot be reached' into the contract's 503 `unavailable`."""
    try:
        yield
    except (EndpointConnectionError, BotoCoreError) as exc:
        log.error("database unreachable: %s", exc)
        raise Unavailable("the database cannot be reached; nothing was written") from exc
    except PynamoDBConnectionError as exc:
        if isinstance(exc.cause, (EndpointConnectionError, BotoCoreError)) or "Connection" in str(exc):
            log.error("database unreachable: %s", exc)
            raise Unavailable("the database cannot be reached; nothing was written") from exc
        raise


def reason_codes(exc: PynamoDBException) -> list[str | None]:
    """Per-item cancellation codes of a failed transaction (None where the item was fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [r.code if r else None for r in reasons]
