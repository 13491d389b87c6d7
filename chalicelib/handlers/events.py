"""Event handlers behind app.py's Lambda entry points: table stream, schedules and inbound mail."""
from __future__ import annotations

import logging
from typing import Any

from datetime import datetime

from chalicelib.domain.clients import new_client_cutoff, utcnow
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.settings import SettingsRepository
from chalicelib.tables.streams import decode_record
from chalicelib.tables.tenants import all_tenants

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


def recalculate_scores(now: datetime | None = None) -> dict:
    """Daily upkeep: prune each tenant's `new` list facet of clients past its new-client window."""
    now = now or utcnow()
    pruned = 0
    for tenant_id in all_tenants():
        settings = SettingsRepository(tenant_id).get("client")
        pruned += ClientRepository(tenant_id).prune_new(new_client_cutoff(settings, now))
    return {"pruned_new_entries": pruned}


def handle_inbound_email(bucket: str, key: str) -> dict:
    """Log an inbound email stored by SES (parsing arrives with the communications issue)."""
    log.info("inbound email s3://%s/%s received", bucket, key)
    return {"bucket": bucket, "key": key, "logged": False}
