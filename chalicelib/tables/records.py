"""Copying between domain records (pydantic) and their PynamoDB items, field by field."""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)


def fields_of(record: BaseModel) -> dict[str, Any]:
    """Every field of the record, internal (excluded-from-answers) ones too."""
    return {name: getattr(record, name) for name in type(record).model_fields}


def record_from(cls: type[R], item: Any) -> R:
    """The record stored in an item; absent attributes take the record's defaults."""
    return cls.model_validate({n: v for n in cls.model_fields if (v := getattr(item, n)) is not None})
