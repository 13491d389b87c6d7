"""Decoding of DynamoDB stream records into the domain's changes: each image read once, keys left behind."""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.stream_cases import Change, Image
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure

log = logging.getLogger(__name__)

# Items that only index others (search terms, creation-day counters) or record the service's own work (heartbeats,
# which the stream function writes itself: their records must not wake it again): no effect or timeline entry
# follows from them, so the template's stream filter keeps their records from the function.
INDEX_ONLY_KINDS = ("search", "day_count", "heartbeat")

# The table's and its indexes' keys and the item's type: storage's own, never a field of a record.
_STORAGE = frozenset({"pk", "sk", "kind", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"})


def _decode(image: dict | None) -> TableItem | None:
    if not image:
        return None
    return TableItem.from_raw_data(image)


def _image(item: TableItem | None) -> Image | None:
    if item is None:
        return None
    return {name: value for name, value in item.attribute_values.items() if name not in _STORAGE}


def to_change(event_name: str, kind: str, old: TableItem | None, new: TableItem | None,
              sequence_number: str) -> Change:
    """The domain's change of an item's two images; the tenant, a facet entry's list and a lookup key's name and
    value are read from the key here, so the domain never reads one."""
    item = new or old
    parse = {"facet": keys.parse_facet_pk, "client_key": keys.parse_client_key_pk}.get(kind)
    keyed = parse(item.pk) if item is not None and parse else None  # (tenant, facet or key name, value)
    tenant_id = keyed[0] if keyed else getattr(item, "tenant_id", None)
    return Change(event_name, kind, tenant_id, _image(old), _image(new), sequence_number,
                  (keyed[1], keyed[2]) if keyed else None)


def decode_record(record: Any) -> Change | None:
    """A chalice DynamoDBRecord (or its raw dict) as a Change; None for items of unknown kind."""
    configure()
    raw = record if isinstance(record, dict) else record.to_dict()
    data = raw.get("dynamodb", {})
    image = data.get("NewImage") or data.get("OldImage") or {}
    kind = image.get("kind", {}).get("S")
    if kind is None or kind in INDEX_ONLY_KINDS:  # the local pump passes what the template's filter drops
        log.debug("stream record without a kind skipped: %s", data.get("Keys"))
        return None
    try:
        old, new = _decode(data.get("OldImage")), _decode(data.get("NewImage"))
    except ValueError:
        log.warning("stream record of unknown kind %s skipped", kind)
        return None
    return to_change(raw.get("eventName", ""), kind, old, new, data.get("SequenceNumber", ""))
