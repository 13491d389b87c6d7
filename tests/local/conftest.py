"""Fixtures of the local-runtime tests: a bare streamed table in DynamoDB Local and a recording Lambda handler."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.ddb_local import ddb_client


@dataclass
class StreamTable:
    name: str
    endpoint: str
    client: Any

    def put(self, pk: str, **attrs: Any) -> None:
        self.client.put_item(TableName=self.name, Item={"pk": {"S": pk}, **attrs})


@pytest.fixture
def stream_table(ddb_endpoint: str) -> Iterator[StreamTable]:
    """A table with a NEW_AND_OLD_IMAGES stream, like the app's, under a unique name."""
    client = ddb_client(ddb_endpoint)
    name = f"pump-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    yield StreamTable(name, ddb_endpoint, client)
    client.delete_table(TableName=name)


@dataclass
class Recorder:
    """A Lambda handler that records each event; `reply` decides what it returns (or raises) per call."""

    reply: Callable[[dict, int], Any] = lambda event, call: None
    events: list[dict] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict, context: Any) -> Any:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
            call = len(self.events)
        return self.reply(event, call)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> float:
        """Seconds until `predicate` held; fails the test after `timeout`."""
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout:
                pytest.fail(f"not met within {timeout}s; events so far: {self.events}")
            time.sleep(0.02)
        return time.monotonic() - start


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
