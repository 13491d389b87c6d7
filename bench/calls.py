"""DynamoDB calls counted by botocore event hooks on every client: operations, items read, capacity consumed."""
from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    """What the DynamoDB calls of a stretch of time did: calls per operation, items read, capacity units."""

    operations: Counter = field(default_factory=Counter)
    items: int = 0  # items the database examined or handed back (Query ScannedCount, BatchGet rows, GetItem)
    rcu: float = 0.0
    wcu: float = 0.0

    @property
    def calls(self) -> int:
        return sum(self.operations.values())

    def __sub__(self, other: Tally) -> Tally:
        return Tally(self.operations - other.operations, self.items - other.items, self.rcu - other.rcu,
                     self.wcu - other.wcu)

    def copy(self) -> Tally:
        return Tally(Counter(self.operations), self.items, self.rcu, self.wcu)

    def summary(self) -> str:
        """`Query×3, BatchGetItem×2, 4.5 RCU`"""
        ops = ", ".join(f"{op}×{n}" for op, n in sorted(self.operations.items(), key=lambda kv: (-kv[1], kv[0])))
        cap = f"{self.rcu:,.1f} RCU" + (f", {self.wcu:,.1f} WCU" if self.wcu else "")
        return f"{ops or 'no calls'}, {self.items:,} items read, {cap}"

    def as_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "operations": dict(self.operations), "items_read": self.items,
                "rcu": round(self.rcu, 2), "wcu": round(self.wcu, 2)}


_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class Counting:
    """Counts every DynamoDB call of this process on clients created after `installed()` began (PynamoDB makes
    one per thread): `before-call` counts the operation, `after-call` the items and the capacity, and
    `before-parameter-build` asks each call for ReturnConsumedCapacity TOTAL (the app's code is unchanged)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally = Tally()
        self.last_params: dict[str, dict[str, Any]] = {}  # operation -> the parameters of its latest call

    def snapshot(self) -> Tally:
        with self._lock:
            return self._tally.copy()

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Tally]:
        """The calls made inside the block (filled in when it ends)."""
        before = self.snapshot()
        out = Tally()
        try:
            yield out
        finally:
            done = self.snapshot() - before
            out.operations, out.items, out.rcu, out.wcu = done.operations, done.items, done.rcu, done.wcu

    # --- the hooks ---------------------------------------------------------------------------------
    def _ask_capacity(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _keep_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.last_params[model.name] = dict(params)

    def _before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._tally.operations[model.name] += 1

    def _after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        items = 0
        if op in ("Query", "Scan"):
            items = parsed.get("ScannedCount", parsed.get("Count", 0))
        elif op == "BatchGetItem":
            items = sum(len(rows) for rows in parsed.get("Responses", {}).values())
        elif op == "GetItem":
            items = int("Item" in parsed)
        elif op == "TransactGetItems":
            items = len(parsed.get("Responses", []))
        consumed = parsed.get("ConsumedCapacity")
        read = write = 0.0
        for row in (consumed if isinstance(consumed, list) else [consumed] if consumed else []):
            units = row.get("CapacityUnits", 0.0)
            if op in _WRITES:
                write += units
            else:
                read += units
        with self._lock:
            self._tally.items += items
            self._tally.rcu += read
            self._tally.wcu += write

    def hook(self, client: Any) -> Any:
        """Register the hooks on one DynamoDB client (a client built before `installed()`, e.g. the bench's)."""
        if client.meta.service_model.service_name == "dynamodb" and not getattr(client, "_bench_counted", False):
            events = client.meta.events
            events.register("provide-client-params.dynamodb", self._keep_params)
            events.register("before-parameter-build.dynamodb", self._ask_capacity)
            events.register("before-call.dynamodb", self._before_call)
            events.register("after-call.dynamodb", self._after_call)
            client._bench_counted = True
        return client

    @contextlib.contextmanager
    def installed(self) -> Iterator[Counting]:
        """Hook every botocore client created inside the block (clients copy their events at creation, so the
        hooks go on each client as it is made)."""
        from botocore.client import ClientCreator

        original = ClientCreator.create_client
        counting = self

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            return counting.hook(original(creator, *args, **kwargs))

        ClientCreator.create_client = create_client  # type: ignore[method-assign]
        try:
            yield self
        finally:
            ClientCreator.create_client = original  # type: ignore[method-assign]
