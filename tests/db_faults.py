"""Database faults for tests on moto: botocore exceptions raised at chosen attempts of chosen operations."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from chalicelib.tables.base import TableItem

URL = "http://dynamodb.eu-west-1.amazonaws.com/"


@contextlib.contextmanager
def failing(operations: dict[str, list], after_the_database: bool = False) -> Iterator[dict[str, int]]:
    """Each attempt of an operation named in `operations` raises the next exception of its list (the last one
    repeats; None: no failure), before moto sees the request or, with `after_the_database`, after moto applied it."""
    events = TableItem._get_connection().connection.client.meta.events
    seen = dict.fromkeys(operations, 0)

    def fail(event_name: str, **_) -> None:
        name = event_name.rsplit(".", 1)[-1]
        if name in operations:
            errors = operations[name]
            seen[name] += 1
            error = errors[min(seen[name], len(errors)) - 1]
            if error is not None:
                raise error(endpoint_url=URL)

    # moto answers from a handler of the generic `before-send`: registered last there, we run after it.
    event = "before-send" if after_the_database else "before-send.dynamodb"
    (events.register_last if after_the_database else events.register_first)(event, fail, unique_id="test-fail")
    try:
        yield seen
    finally:
        events.unregister(event, unique_id="test-fail")
