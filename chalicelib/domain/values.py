"""Value formats the contract fixes: UTC timestamps with `Z` and money as decimal strings."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated

import email_validator
from pydantic import BaseModel, PlainSerializer

# RFC 6761 reserves `.test` for testing; staging data and test suites use it, so addresses there are accepted.
email_validator.SPECIAL_USE_DOMAIN_NAMES = [d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d != "test"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime) -> str:
    """ISO 8601 UTC with `Z` and millisecond precision."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(value: Decimal) -> str:
    """A decimal string with at least two decimals: Decimal('5') -> '5.00'."""
    return str(value.quantize(Decimal("0.01"))) if value.as_tuple().exponent >= -2 else str(value)


# A Decimal answered in JSON as a decimal string with at least two decimals.
MoneyOut = Annotated[Decimal, PlainSerializer(money, return_type=str, when_used="json")]


class Record(BaseModel):
    """A stored record whose answer carries every timestamp as ISO 8601 UTC with `Z`."""

    def public(self) -> dict:
        data = self.model_dump(mode="json")
        for name in data:
            value = getattr(self, name)
            if isinstance(value, datetime):
                data[name] = iso(value)
        return data
