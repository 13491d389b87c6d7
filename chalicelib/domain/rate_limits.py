"""Rate limits (OWASP API4): fixed-window counts of outbound emails per tenant and invitations per contact."""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.errors import RateLimited
from chalicelib.domain.ports import RateLimitStore

log = logging.getLogger(__name__)

MINUTE, DAY = 60, 24 * 3600
clock: Callable[[], float] = time.time  # epoch seconds; tests move it forward


@dataclass(frozen=True)
class Limit:
    """At most `allowed` uses of `subject` per window of `window` seconds (windows start at multiples of it, so
    a day is a UTC day)."""

    subject: str  # the counter: "emails" (the whole tenant) or "invitations:<contact id>"
    allowed: int
    window: int
    what: str  # "outbound emails per tenant per minute", for the message
    setting: str  # the environment variable that sets `allowed`


@dataclass(frozen=True)
class Spent:
    """One use counted in a window: what `give_back` undoes."""

    subject: str
    window_start: int


def limited(limit: Limit, retry_after: int) -> RateLimited:
    """The error a spent `limit` raises: it names the limit and its setting, and when to try again."""
    refused = RateLimited(f"rate limit reached: at most {limit.allowed} {limit.what} ({limit.setting}); "
                          f"retry in {retry_after} s")
    refused.retry_after = retry_after
    return refused


def outbound_emails() -> Limit:
    from chalicelib.config import get_settings  # read at first use, never at import

    return Limit("emails", get_settings().emails_per_tenant_per_minute, MINUTE,
                 "outbound emails per tenant per minute", "EMAILS_PER_TENANT_PER_MINUTE")


def invitations(contact_id: str) -> Limit:
    from chalicelib.config import get_settings

    return Limit(f"invitations:{contact_id}", get_settings().invitations_per_contact_per_day, DAY,
                 "portal invitations per contact per day", "INVITATIONS_PER_CONTACT_PER_DAY")


def spend(counters: RateLimitStore, limits: list[Limit]) -> list[Spent]:
    """Count one use against each limit, or count none and raise RateLimited (Retry-After: when the refusing
    window ends). Call it before anything is written or sent, so a refused request leaves no trace."""
    now = clock()
    spent: list[Spent] = []
    for limit in limits:
        start = int(now) // limit.window * limit.window
        if not counters.take(limit.subject, start, limit.window, limit.allowed):
            give_back(counters, spent)
            raise limited(limit, max(1, math.ceil(start + limit.window - now)))
        spent.append(Spent(limit.subject, start))
    return spent


def give_back(counters: RateLimitStore, spent: list[Spent]) -> None:
    """Uncount uses whose email was not sent after all (the request failed before sending). Never raises: a use
    that cannot be given back only makes the limit a little stricter until its window ends."""
    for use in spent:
        try:
            counters.give_back(use.subject, use.window_start)
        except Exception as exc:  # noqa: BLE001 - the request's own answer matters more
            log.warning("rate limit use %s/%s not given back: %s", use.subject, use.window_start, exc)
