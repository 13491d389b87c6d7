"""Value formats the contract fixes: UTC timestamps with `Z`, money as decimal strings, id and time-key bounds."""
from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer
from ulid import ULID


def _accept_test_domains(module: Any) -> None:
    """RFC 6761 reserves `.test` for testing; staging data and test suites use it, so addresses there are accepted."""
    module.SPECIAL_USE_DOMAIN_NAMES = [d for d in module.SPECIAL_USE_DOMAIN_NAMES if d != "test"]


class _EmailValidatorHook:
    """An import hook (a `sys.meta_path` finder) that configures `email_validator` when something first imports it
    (pydantic, when it first builds an email field): it stays out of `import app`, yet every user sees it configured."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "email_validator":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module: Any) -> None:
                run(module)
                _accept_test_domains(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "email_validator" in sys.modules:
    _accept_test_domains(sys.modules["email_validator"])
elif not any(isinstance(finder, _EmailValidatorHook) for finder in sys.meta_path):
    sys.meta_path.insert(0, _EmailValidatorHook())


# Contract §16: a longer id is a 404 in a path and a 422 in a body; 128 characters also fit every DynamoDB key.
MAX_ID_LENGTH = 128


def is_key_id(value: object) -> bool:
    """An id that can be part of a stored key: not empty, at most MAX_ID_LENGTH, no `#` (it separates key parts)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and "#" not in value


def ulid_bound(moment: datetime, last: bool = False) -> str:
    """The first (or, with `last`, the final) ULID of the millisecond of `moment`, for key ranges over time-ordered
    ids. ULID time starts in 1970: earlier moments take its first millisecond, so such a range starts (or ends)
    before every id instead of failing."""
    millis = max(0, int(moment.timestamp() * 1000))
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + (b"\xff" if last else b"\x00") * 10))


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """ISO 8601 UTC with `Z` and millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(value: Decimal) -> str:
    """A decimal string with at least two decimals: Decimal('5') -> '5.00'."""
    exponent = value.as_tuple().exponent
    return str(value.quantize(Decimal("0.01"))) if isinstance(exponent, int) and exponent >= -2 else str(value)


# A Decimal answered in JSON as a decimal string with at least two decimals.
MoneyOut = Annotated[Decimal, PlainSerializer(money, return_type=str, when_used="json")]


class Model(BaseModel):
    """The base of every pydantic model of the service: its validator and serializer are built on first use
    (`defer_build`), not at import, so a cold start builds only the models its request needs."""

    model_config = ConfigDict(defer_build=True)


class Record(Model):
    """A stored record whose answer carries every timestamp as ISO 8601 UTC with `Z`."""

    def public(self) -> dict:
        data = self.model_dump(mode="json")
        for name in data:
            value = getattr(self, name)
            if isinstance(value, datetime):
                data[name] = iso(value)
        return data
