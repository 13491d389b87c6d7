"""The table stream handler: decodes each batch, applies its effects once, and reports the records that failed."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chalicelib import telemetry
from chalicelib.domain import stream_cases
from chalicelib.domain.clients import Client
from chalicelib.domain.stream_cases import EFFECTS, Change
from chalicelib.tables.stores import Directory, Stores, decode_record

__all__ = ["EFFECTS", "handle_stream_batch"]  # EFFECTS: the effects applied, reachable (and patched) here

log = logging.getLogger(__name__)


def handle_stream_batch(records: list[Any]) -> dict:
    """Apply each record's effects once per batch; failed records are reported so only they are retried. One log
    line and metric set per batch (records, effects, failures, iterator age), and a heartbeat for the health check.

    Every effect recomputes from stored state (a recount, a re-evaluation), so a batch delivered twice, out of
    order, or partly retried leaves the same figures.
    """
    with telemetry.invocation("stream", "stream batch", function="on_table_stream", records=len(records)) as seen:
        answer, changes, effects = _handle(records)
        failed = len(answer["batchItemFailures"])
        age = _iterator_age_seconds(records)
        seen.note(changes=changes, effects=effects, failures=failed, iterator_age_s=age)
        seen.count("StreamRecords", len(records))
        seen.count("StreamRecordsFailed", failed)
        seen.count("StreamEffects", effects)
        if age is not None:
            seen.count("StreamIteratorAge", age * 1000, "Milliseconds")
        if changes:
            _beat(age, len(records))
        return answer


def _iterator_age_seconds(records: list[Any]) -> float | None:
    """How long the oldest record of the batch waited in the stream (Lambda's IteratorAge, as the handler sees it)."""
    stamps = [r.timestamp for r in records if isinstance(getattr(r, "timestamp", None), datetime)]
    if not stamps:
        return None
    now = datetime.now(UTC).replace(tzinfo=None)  # chalice gives naive UTC times
    return round(max(0.0, (now - min(stamps)).total_seconds()), 1)


def _beat(age: float | None, records: int) -> None:
    try:
        Directory().beat("stream", datetime.now(UTC), lag_seconds=age, records=records)
    except Exception:  # the health check's figure never fails a batch
        log.warning("stream heartbeat not written", exc_info=True)


def _handle(records: list[Any]) -> tuple[dict, int, int]:
    failures: list[dict] = []
    changes: list[Change] = []
    for record in records:
        try:
            change = decode_record(record)
        except Exception:
            log.exception("stream record %s could not be decoded", record.sequence_number)
            failures.append({"itemIdentifier": record.sequence_number})
            continue
        if change is not None:
            changes.append(change)
    planned = stream_cases.plan(changes)
    # One Stores per tenant for this batch only: its settings, custom fields and segment list are read once (the
    # memo), and `clients` hands each client from the effect that saved it to the next one (read once per record).
    stores: dict[str, Stores] = {}
    clients: dict[str, dict[str, Client]] = {}

    def of(tenant_id: str) -> Stores:
        if tenant_id not in stores:
            stores[tenant_id] = Stores(tenant_id, memo=True)
        return stores[tenant_id]

    for tenant_id, logged in planned.timeline.items():
        try:
            stream_cases.record_timeline(of(tenant_id), [e for e, _ in logged])
        except Exception:
            log.exception("timeline entries of tenant %s failed", tenant_id)
            failures.extend({"itemIdentifier": n} for _, n in logged)
    for (what, tenant_id, subject), sequence_numbers in planned.effects.items():
        try:
            stream_cases.apply(of(tenant_id), what, subject, clients.setdefault(tenant_id, {}))
        except Exception:
            log.exception("stream effect %s of %s/%s failed", what, tenant_id, subject)
            failures.extend({"itemIdentifier": n} for n in sequence_numbers)
    return {"batchItemFailures": failures}, len(changes), len(planned.effects)
