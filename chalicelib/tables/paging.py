"""One page of a query: the items and the exclusive start key of the next page (None at the end)."""
from __future__ import annotations

from typing import Iterable, TypeVar

from chalicelib.tables.errors import storage_errors

T = TypeVar("T")


def one_page(source: Iterable[T], limit: int, key: tuple[str, ...] = ("pk", "sk")) -> tuple[list[T], dict | None]:
    """Up to `limit` items of `source`; when more follow, the position after the last one, made of the `key`
    attributes (the table's and, for an index query, the index's)."""
    items: list[T] = []
    with storage_errors():
        for item in source:
            items.append(item)
            if len(items) > limit:
                break
    if len(items) <= limit:
        return items, None
    last = items[limit - 1]
    return items[:limit], {name: {"S": getattr(last, name)} for name in key}
