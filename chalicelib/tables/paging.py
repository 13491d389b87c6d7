"""One page of a query: the items and the exclusive start key of the next page (None at the end)."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from pynamodb.exceptions import QueryError

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.ports import Position
from chalicelib.tables.errors import storage_errors

T = TypeVar("T")
_START_KEY = re.compile(r"start(ing)? key", re.IGNORECASE)


def one_page(source: Iterable[T], limit: int, key: tuple[str, ...] = ("pk", "sk"),
             keep: Callable[[T], bool] | None = None, budget: int | None = None) -> tuple[list[T], Position | None]:
    """Up to `limit` items of `source` (those `keep` keeps); when more follow, the position after the last one,
    made of the `key` attributes (the table's and, for an index query, the index's). With a `budget`, at most
    that many items are read: the page may come back short, with the position after the last one read."""
    items: list[T] = []
    read = 0
    last: T | None = None
    try:
        with storage_errors():
            for item in source:
                if budget is not None and read >= budget:
                    return items, _position(last, key)
                read += 1
                last = item
                if keep is None or keep(item):
                    items.append(item)
                if len(items) > limit:
                    break
    except QueryError as exc:
        # A well-formed start key this query cannot resume from (another partition, other key attributes):
        # DynamoDB says so only in the message of a ValidationException.
        if exc.cause_response_code == "ValidationException" and _START_KEY.search(exc.cause_response_message or ""):
            raise BadRequest("the cursor is not valid", [{"field": "cursor", "message": "is not valid"}],
                             code="invalid_cursor") from None
        raise
    if len(items) <= limit:
        return items, None
    return items[:limit], _position(items[limit - 1], key)


def _position(last: object, key: tuple[str, ...]) -> Position:
    return {name: {"S": getattr(last, name)} for name in key}
