"""The one retry of optimistic writes: re-run a read-modify-write that lost a race, with jittered backoff."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from chalicelib.domain.errors import Contention, VersionConflict

T = TypeVar("T")
_deadline: ContextVar[float | None] = ContextVar("retry_deadline", default=None)  # of the outermost retry

FIRST_WAIT = 0.01  # seconds; the window doubles after every lost race ("full jitter": a random wait inside it)
MAX_WAIT = 0.5
MAX_BUDGET = 10.0  # an API call must answer well before API Gateway's 29 s, whatever the function's timeout


def budget() -> float:
    """Seconds one write may spend retrying: a third of the function's timeout, at most MAX_BUDGET."""
    from chalicelib.config import get_settings  # read at first use, never at import

    return min(MAX_BUDGET, get_settings().function_timeout / 3)


def retrying(attempt: Callable[[], T], what: str = "the record", *, seconds: float | None = None) -> T:
    """Run `attempt` (read, decide, conditional write) until no VersionConflict stops it.

    Each attempt must read afresh, so a retry decides on the state that won. A StaleVersion (a stale If-Match)
    is not a VersionConflict and ends at once, as does any other error. When the budget runs out the last
    attempt's write was refused, so nothing was written: Contention, 503 `unavailable`.
    """
    # Imported at first use: every Lambda of the app imports app.py, and with it this module.
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_before_delay, wait_random_exponential

    now = time.monotonic()
    deadline = now + (budget() if seconds is None else seconds)
    outer = _deadline.get()
    if outer is not None:  # nested (a use case around a transaction): one budget however the retries nest
        deadline = min(deadline, outer)
    retryer = Retrying(retry=retry_if_exception_type(VersionConflict),
                       wait=wait_random_exponential(multiplier=FIRST_WAIT, max=MAX_WAIT),
                       stop=stop_before_delay(max(deadline - now, 0)))
    token = _deadline.set(deadline)
    try:
        return retryer(attempt)
    except RetryError as exc:
        raise Contention(f"{what} kept changing under concurrent writes; nothing was written, try again") \
            from exc.last_attempt.exception()
    finally:
        _deadline.reset(token)
