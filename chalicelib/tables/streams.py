"""Decoding of DynamoDB stream records into typed items of the table."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chalicelib.tables.base import TableItem, configure

log = logging.getLogger(__name__)


@dataclass
class Change:
    event_name: str  # INSERT | MODIFY | REMOVE
    kind: str
    old: TableItem | None
    new: TableItem | None
    sequence_number: str


def _decode(image: dict | None) -> TableItem | None:
    if not image:
        return None
    return TableItem.from_raw_data(image)


def decode_record(record: Any) -> Change | None:
    """A chalice DynamoDBRecord (or its raw dict) as a Change; None for items of unknown kind."""
    configure()
    raw = record if isinstance(record, dict) else record.to_dict()
    data = raw.get("dynamodb", {})
    image = data.get("NewImage") or data.get("OldImage") or {}
    kind = image.get("kind", {}).get("S")
    if kind is None:
        log.debug("stream record without a kind skipped: %s", data.get("Keys"))
        return None
    try:
        old, new = _decode(data.get("OldImage")), _decode(data.get("NewImage"))
    except ValueError:
        log.warning("stream record of unknown kind %s skipped", kind)
        return None
    return Change(raw.get("eventName", ""), kind, old, new, data.get("SequenceNumber", ""))
