"""Heartbeats: when the stream function last handled a batch and how far behind the writes it was."""
from __future__ import annotations

import time
from datetime import datetime

from chalicelib.domain.health_cases import Heartbeat
from chalicelib.tables import keys
from chalicelib.tables.base import RESET_HOOKS, configure
from chalicelib.tables.connection import bookkeeping
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import HeartbeatItem

EVERY_SECONDS = 15.0  # at most one heartbeat write per function and process in this long
_last_written: dict[str, float] = {}
RESET_HOOKS.append(_last_written.clear)  # a new table (tests, the runner) gets its first beat at once


def beat(name: str, at: datetime, *, lag_seconds: float | None = None, records: int | None = None) -> bool:
    """Record that `name` worked at `at` (skipped when this process wrote one less than EVERY_SECONDS ago)."""
    now = time.monotonic()
    if now - _last_written.get(name, -EVERY_SECONDS) < EVERY_SECONDS:
        return False
    configure()
    with bookkeeping(), storage_errors():
        HeartbeatItem(keys.HEARTBEAT_PK, name, at=at, records=records,
                      lag_seconds=None if lag_seconds is None else round(lag_seconds, 1)).save()
    _last_written[name] = now
    return True


def last(name: str) -> Heartbeat | None:
    configure()
    with storage_errors():
        try:
            item = HeartbeatItem.get(keys.HEARTBEAT_PK, name)
        except HeartbeatItem.DoesNotExist:
            return None
    return Heartbeat(item.at, None if item.lag_seconds is None else float(item.lag_seconds),
                     None if item.records is None else int(item.records))
