"""The table's botocore connection: per-attempt timeouts, retries bounded by a time budget, and unknown outcomes."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection, TableConnection

from chalicelib import aws, telemetry
from chalicelib.tables.errors import WRITES, may_have_applied, unavailable

# botocore backs off at most 2**i seconds before retry i+1 (throttling; other errors wait 25 ms * 2**i).
_BACKOFF_BASE = 2.0
_SENT = "nexus_may_have_applied"  # key in botocore's per-call context: an attempt of this call may have landed


@dataclass(frozen=True)
class Limits:
    """Per-attempt timeouts and the number of attempts of one database call."""

    connect: float
    read: float
    attempts: int

    @property
    def attempt_seconds(self) -> float:
        """The longest one attempt can take."""
        return self.connect + self.read

    @classmethod
    def within(cls, budget: float, connect: float, read: float) -> Limits:
        """As many attempts as fit in `budget` with their worst-case backoff (at least one)."""
        attempts = 1
        while (attempts + 1) * (connect + read) + sum(_BACKOFF_BASE ** i for i in range(attempts)) <= budget:
            attempts += 1
        return cls(connect, read, attempts)


class BudgetSpent(BotoCoreError):
    """Raised instead of an attempt that could not end before the request's database deadline."""

    fmt = "the database did not answer within this request's time budget"


@dataclass
class _Budget:
    deadline: float  # time.monotonic()
    failed: bool = False  # an attempt of this request failed: from now on every attempt must fit the deadline
    wrote: bool = False  # a write of this request landed: a later failure leaves the request's outcome open


_budget: ContextVar[_Budget | None] = ContextVar("database_budget", default=None)
_bookkeeping: ContextVar[bool] = ContextVar("database_bookkeeping", default=False)


@contextlib.contextmanager
def bookkeeping() -> Iterator[None]:
    """Writes inside are about the request, not its effects (an idempotency claim): never "may have written"."""
    token = _bookkeeping.set(True)
    try:
        yield
    finally:
        _bookkeeping.reset(token)


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Every database call inside shares one deadline `seconds` from now (an enclosing one is never extended).

    A healthy database is never cut off; once an attempt has failed, no retry or further call starts unless it
    can end (connect + read timeout) before the deadline, so a request facing a frozen database answers in time.
    """
    outer = _budget.get()
    deadline = time.monotonic() + seconds
    inner = _Budget(min(deadline, outer.deadline) if outer else deadline, failed=bool(outer and outer.failed),
                    wrote=bool(outer and outer.wrote))
    token = _budget.set(inner)
    try:
        yield
    finally:
        _budget.reset(token)
        if outer:
            outer.failed, outer.wrote = outer.failed or inner.failed, outer.wrote or inner.wrote


def _counts(operation: str) -> bool:
    """Whether a call of `operation` changes what the request answers for (a write, not bookkeeping)."""
    return operation in WRITES and not _bookkeeping.get()


def _install(events, limits: Limits) -> None:
    def before_attempt(request, **_) -> None:  # request-created: each attempt, after botocore's backoff
        budget = _budget.get()
        if budget is None:
            return
        if request.context.get("retries", {}).get("attempt", 1) > 1:
            budget.failed = True
        if budget.failed and time.monotonic() + limits.attempt_seconds > budget.deadline:
            raise BudgetSpent()

    def after_attempt(context, exception=None, response_dict=None, **_) -> None:  # response-received
        failed_on_server = bool(response_dict) and response_dict["status_code"] >= 500
        budget = _budget.get()
        if budget is not None and (exception is not None or failed_on_server):
            budget.failed = True
        if failed_on_server or exception is not None and may_have_applied(exception):
            context[_SENT] = True

    def after_call_error(exception, context, event_name, **_) -> None:  # after-call-error: the call failed
        # The verdict over every attempt travels on the exception (PynamoDB may wrap it: `.cause`, `__cause__`).
        exception.outcome_unknown = _counts(event_name.rsplit(".", 1)[-1]) and bool(context.get(_SENT))

    def after_call(http_response, event_name, **_) -> None:  # after-call: an answer came
        budget = _budget.get()
        if budget is not None and http_response.status_code < 300 and _counts(event_name.rsplit(".", 1)[-1]):
            budget.wrote = True

    def ask_capacity(params, model, **_) -> None:  # before-parameter-build: the capacity each call consumed
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def measured(parsed, **_) -> None:  # after-call: the call and its capacity, for the invocation's metrics
        consumed = (parsed or {}).get("ConsumedCapacity") or []
        telemetry.database_call(sum(float(c.get("CapacityUnits", 0)) for c in
                                    (consumed if isinstance(consumed, list) else [consumed])))

    events.register("before-parameter-build.dynamodb", ask_capacity)
    events.register("after-call.dynamodb", measured)
    events.register("request-created.dynamodb", before_attempt)
    events.register("after-call.dynamodb", after_call)
    events.register("response-received.dynamodb", after_attempt)
    events.register("after-call-error.dynamodb", after_call_error)


class _BoundedConnection(Connection):
    """PynamoDB's connection with our limits; every botocore client it creates carries the budget hooks."""

    def __init__(self, limits: Limits, **kwargs) -> None:
        super().__init__(connect_timeout_seconds=limits.connect, read_timeout_seconds=limits.read,
                         max_retry_attempts=limits.attempts - 1, **kwargs)
        self.limits = limits
        self._hooked: Any = None

    def _make_api_call(self, operation_name: str, operation_kwargs: dict) -> dict:
        # The one funnel of every call: a database out of reach is Unavailable here, before PynamoDB wraps it
        # (its `cause_response_code` even fails on botocore's timeouts, whose `response` is None).
        try:
            return super()._make_api_call(operation_name, operation_kwargs)
        except (BotoCoreError, ClientError) as exc:
            budget = _budget.get()
            failure = unavailable(exc, write=_counts(operation_name), wrote_before=bool(budget and budget.wrote))
            if failure is None:
                raise
            raise failure from exc

    @property
    def session(self) -> Any:
        """PynamoDB's per-thread botocore session, reading service models through the process's one loader: a
        botocore loader parses the DynamoDB model (a large JSON file) once, so a later client (another thread,
        a reconfigured table) costs milliseconds rather than a third of a second."""
        fresh = getattr(self._local, "session", None) is None
        session = super().session
        if fresh:
            session.register_component("data_loader", aws.loader())
        return session

    @property
    def client(self):
        client = super().client  # PynamoDB may replace its client (empty credentials): hook each new one
        if client is not self._hooked:
            _install(client.meta.events, self.limits)
            self._hooked = client
        return client


def table_connection(model, limits: Limits) -> TableConnection:
    """A PynamoDB table connection for `model`'s table (region, host from its Meta) bounded by `limits`."""
    meta_table = model._get_connection().get_meta_table()  # PynamoDB derives the key schema from the model
    table = TableConnection(model.Meta.table_name, meta_table=meta_table)
    table.connection = _BoundedConnection(limits, region=model.Meta.region, host=model.Meta.host)
    table.connection.add_meta_table(meta_table)
    return table
