"""Rate limit counters: one item per (tenant, subject, window), counted by a conditional ADD."""
from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.connection import bookkeeping
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.work_items import RateCounterItem

KEEP = 3600  # seconds a window's item outlives the window (TTL removes it later still): none is ever read again


class RateLimitRepository:
    """The tenant's rate limit counters (the domain's `RateLimitStore`)."""

    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def _item(self, subject: str, window_start: int) -> RateCounterItem:
        return RateCounterItem(keys.rate_counter_pk(self.tenant_id, subject, window_start), keys.UNIQUE_SK)

    def take(self, subject: str, window_start: int, window: int, allowed: int) -> bool:
        """Count one use unless `allowed` are counted already: one UpdateItem whose condition the database checks
        against the stored count, so concurrent takers can never pass the limit together."""
        item = self._item(subject, window_start)
        # A counter is about the request, not its effects: a failure here never makes a write's outcome unknown.
        with bookkeeping(), storage_errors():
            try:
                item.update(actions=[RateCounterItem.n.add(1), RateCounterItem.kind.set(RateCounterItem),
                                     RateCounterItem.expires_at.set(window_start + window + KEEP)],
                            condition=RateCounterItem.n.does_not_exist() | (RateCounterItem.n < allowed))
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    def give_back(self, subject: str, window_start: int) -> None:
        item = self._item(subject, window_start)
        with bookkeeping(), storage_errors():
            try:
                item.update(actions=[RateCounterItem.n.add(-1)], condition=RateCounterItem.n > 0)
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

    def used(self, subject: str, window_start: int) -> int:
        """Uses counted in a window (0 for a window without any)."""
        try:
            return int(RateCounterItem.get(keys.rate_counter_pk(self.tenant_id, subject, window_start),
                                           keys.UNIQUE_SK, consistent_read=True).n)
        except RateCounterItem.DoesNotExist:
            return 0
