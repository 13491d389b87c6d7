"""The table stream handler: decodes each batch, applies its effects once, and reports the records that failed."""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain import stream_cases
from chalicelib.domain.clients import Client
from chalicelib.domain.stream_cases import EFFECTS, Change
from chalicelib.tables.stores import Stores, decode_record

__all__ = ["EFFECTS", "handle_stream_batch"]  # EFFECTS: the effects applied, reachable (and patched) here

log = logging.getLogger(__name__)


def handle_stream_batch(records: list[Any]) -> dict:
    """Apply each record's effects once per batch; failed records are reported so only they are retried.

    Every effect recomputes from stored state (a recount, a re-evaluation), so a batch delivered twice, out of
    order, or partly retried leaves the same figures.
    """
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
    return {"batchItemFailures": failures}
