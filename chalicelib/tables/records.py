"""Copying between domain records (pydantic) and their PynamoDB items, field by field."""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from pynamodb.expressions.condition import Condition

R = TypeVar("R", bound=BaseModel)


def fields_of(record: BaseModel) -> dict[str, Any]:
    """Every field of the record, internal (excluded-from-answers) ones too."""
    return {name: getattr(record, name) for name in type(record).model_fields}


def record_from(cls: type[R], item: Any) -> R:
    """The record stored in an item; absent attributes take the record's defaults."""
    return cls.model_validate({n: v for n in cls.model_fields if (v := getattr(item, n)) is not None})


def as_read(model: Any, record: BaseModel, names: tuple[str, ...]) -> Condition | None:
    """The condition that these stored attributes still hold the values read: a user's write of the whole item
    must not put back derived figures (counts, refresh progress) that the stream changed meanwhile."""
    condition: Condition | None = None
    for name in names:
        attr, value = getattr(model, name), getattr(record, name)
        clause = attr.does_not_exist() if value is None else attr == value
        condition = clause if condition is None else condition & clause
    return condition
