"""The table stream handler: decodes each batch, applies its effects once, and reports the records that failed."""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain import stream_cases
from chalicelib.domain.stream_cases import EFFECTS, Change
from chalicelib.tables.stores import Stores, decode_record

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
    stores: dict[str, Stores] = {}
    for tenant_id, logged in planned.timeline.items():
        try:
            stream_cases.record_timeline(stores.setdefault(tenant_id, Stores(tenant_id)), [e for e, _ in logged])
        except Exception:
            log.exception("timeline entries of tenant %s failed", tenant_id)
            failures.extend({"itemIdentifier": n} for _, n in logged)
    for (what, tenant_id, subject), sequence_numbers in planned.effects.items():
        try:
            EFFECTS[what](stores.setdefault(tenant_id, Stores(tenant_id)), subject)
        except Exception:
            log.exception("stream effect %s of %s/%s failed", what, tenant_id, subject)
            failures.extend({"itemIdentifier": n} for n in sequence_numbers)
    return {"batchItemFailures": failures}
