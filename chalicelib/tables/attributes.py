"""Custom PynamoDB attributes: exact decimals and JSON documents."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.constants import STRING


class DecimalAttribute(Attribute[Decimal]):
    """Money and multipliers stored as decimal strings, so nothing passes through a float."""

    attr_type = STRING

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class JSONAttribute(Attribute[Any]):
    """A nested document (addresses, custom fields) kept as JSON text; it is never queried by DynamoDB."""

    attr_type = STRING

    def serialize(self, value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)

    def deserialize(self, value: str) -> Any:
        return json.loads(value)
