"""Records the DynamoDB calls made in a block (operation, parameters, answer), refused ones too, on any client."""
from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Calls:
    made: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def operations(self) -> Counter:
        return Counter(op for op, _, _ in self.made)

    def items_read(self) -> int:
        """Items the database handed back (Query and Scan counts, BatchGetItem and GetItem rows)."""
        total = 0
        for op, _, answer in self.made:
            if op in ("Query", "Scan"):
                total += answer.get("Count", 0)
            elif op == "BatchGetItem":
                total += sum(len(rows) for rows in answer.get("Responses", {}).values())
            elif op == "GetItem":
                total += "Item" in answer
        return total


@contextlib.contextmanager
def recorded() -> Iterator[Calls]:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    calls = Calls()

    def recording(client, operation_name, api_params):
        dynamodb = client.meta.service_model.service_name == "dynamodb"
        try:
            answer = original(client, operation_name, api_params)
        except Exception as exc:  # a refused call (a failed condition) is a call made too
            if dynamodb:
                calls.made.append((operation_name, api_params, getattr(exc, "response", {})))
            raise
        if dynamodb:
            calls.made.append((operation_name, api_params, answer))
        return answer

    BaseClient._make_api_call = recording
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original
