"""Event handlers behind app.py's Lambda entry points: table stream, schedules and inbound mail."""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.tables.streams import decode_record

log = logging.getLogger(__name__)


def handle_stream_batch(records: list[Any]) -> dict:
    """Apply each record's effects; failed records are reported so only they (and later ones) are retried."""
    failures = []
    for record in records:
        try:
            change = decode_record(record)
            if change is None:
                continue
            log.debug("stream %s %s", change.event_name, change.kind)
        except Exception:
            log.exception("stream record %s failed", getattr(record, "sequence_number", "?"))
            failures.append({"itemIdentifier": record.sequence_number})
    return {"batchItemFailures": failures}


def refresh_segments(now: Any = None) -> dict:
    """Refresh every due segment (segments arrive with their own issue); answers what it did."""
    return {"refreshed": 0}


def recalculate_scores(now: Any = None) -> dict:
    """Daily upkeep: prune the `new` list facet of clients past the tenant's new-client window."""
    return {"recalculated": 0}


def handle_inbound_email(bucket: str, key: str) -> dict:
    """Log an inbound email stored by SES (parsing arrives with the communications issue)."""
    log.info("inbound email s3://%s/%s received", bucket, key)
    return {"bucket": bucket, "key": key, "logged": False}
