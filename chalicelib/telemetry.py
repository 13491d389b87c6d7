"""Logs, metrics and traces of every function: one JSON line and one EMF metric set per request, batch, run or email."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

SERVICE = "client-management"
# Fields every log line written during an invocation carries, so that its lines can be found by any of them.
CORRELATED = ("request_id", "function", "tenant", "job_id")
_STDLIB = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

log = logging.getLogger("chalicelib.telemetry")


@dataclass
class Invocation:
    """What one invocation (a request, a stream batch, a schedule run, a job step, an email) did and measured."""

    kind: str
    fields: dict[str, Any]
    dimensions: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, str, float]] = field(default_factory=list)  # (name, unit, value)
    db_calls: int = 0
    db_capacity: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def note(self, **fields: Any) -> None:
        self.fields.update({k: v for k, v in fields.items() if v is not None})

    def count(self, name: str, value: float = 1, unit: str = "Count") -> None:
        self.metrics.append((name, unit, float(value)))

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


_current: ContextVar[Invocation | None] = ContextVar("telemetry_invocation", default=None)
_configured = False
_lock = threading.Lock()


def note(**fields: Any) -> None:
    """Add fields to the current invocation's line (ids only: never emails, names or bodies)."""
    if (inv := _current.get()) is not None:
        inv.note(**fields)


def count(name: str, value: float = 1, unit: str = "Count") -> None:
    """A metric of the current invocation (outside one: its own metric set, written at once)."""
    inv = _current.get()
    if inv is not None:
        inv.count(name, value, unit)
    else:
        _write_metrics(Invocation("metric", {}, metrics=[(name, unit, float(value))]))


def database_call(capacity: float) -> None:
    """One DynamoDB call of the current invocation and the capacity units it consumed (botocore hook)."""
    if (inv := _current.get()) is not None:
        inv.db_calls += 1
        inv.db_capacity += capacity


@contextlib.contextmanager
def invocation(kind: str, message: str, *, dimensions: dict[str, str] | None = None,
               **fields: Any) -> Iterator[Invocation]:
    """Measure the block: at its end one log line `message` with the fields, the duration and the database calls,
    and one EMF metric set (with `DynamoDBCalls` and `ConsumedCapacity`). Nested invocations add to the outer."""
    outer = _current.get()
    if outer is not None:  # a job run inline by a schedule: one line, the outer one
        outer.note(**fields)
        yield outer
        return
    configure()
    inv = Invocation(kind, {k: v for k, v in fields.items() if v is not None}, dict(dimensions or {}))
    token = _current.set(inv)
    level = logging.INFO
    try:
        with _traced(kind, inv):
            yield inv
    except BaseException as exc:
        inv.note(error=type(exc).__name__)
        level = logging.ERROR
        raise
    finally:
        _current.reset(token)
        inv.note(duration_ms=round(inv.elapsed_ms, 1), db_calls=inv.db_calls,
                 db_capacity=round(inv.db_capacity, 1))
        inv.count("DynamoDBCalls", inv.db_calls)
        inv.count("ConsumedCapacity", inv.db_capacity)
        log.log(level, message, extra={"invocation": kind, **{k if k not in _STDLIB else f"{k}_": v
                                                             for k, v in inv.fields.items()}})
        _write_metrics(inv)


# --- logging ------------------------------------------------------------------------------------------------------
class _Correlate(logging.Filter):
    """Stamps the current invocation's ids on every record (a database warning inside a request names it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        inv = _current.get()
        if inv is not None:
            for key in CORRELATED:
                if key in inv.fields and not hasattr(record, key):
                    setattr(record, key, inv.fields[key])
        return True


class TextFormatter(logging.Formatter):
    """LOG_FORMAT=text: `time LEVEL logger: message key=value ...`, the same fields as the JSON lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STDLIB and not k.startswith("_"))
        return super().format(record) + (f"  {extras}" if extras else "")


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The JSON formatter of Powertools (its Logger's lines), or the text one."""
    if (fmt or setting("log_format")) == "text":
        return TextFormatter()
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    return LambdaPowertoolsFormatter(service=SERVICE, utc=True, use_rfc3339=True)


def handlers() -> list[logging.Handler]:
    """stdout (what Lambda sends to CloudWatch Logs) and, when LOG_FILE is set (locally), JSON lines there too."""
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter())
    out: list[logging.Handler] = [console]
    if path := setting("log_file"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        file = logging.FileHandler(path, encoding="utf-8")
        file.setFormatter(formatter("json"))
        out.append(file)
    for handler in out:
        handler.addFilter(_Correlate())
    return out


def configure(*, root: bool = False) -> None:
    """Once per process: the `chalicelib` loggers write through our handlers (not the Lambda runtime's root
    handler), at LOG_LEVEL; tracing starts when X-Ray is on. `root=True` (the local runtime) takes every logger."""
    global _configured
    if _configured and not root:
        return
    with _lock:
        if _configured and not root:
            return
        target = logging.getLogger() if root else logging.getLogger("chalicelib")
        for old in list(target.handlers):
            target.removeHandler(old)
        for handler in handlers():
            target.addHandler(handler)
        level = str(setting("log_level")).upper()
        target.setLevel(level if isinstance(logging.getLevelName(level), int) else logging.INFO)
        if not root:  # in Lambda, the runtime's root handler would write each line a second time, as text
            target.propagate = not os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        else:
            logging.getLogger("chalicelib").propagate = True
            logging.getLogger("chalicelib").handlers.clear()
        if not _configured:
            _start_tracing()
        _configured = True


def configure_commands() -> None:
    """Operator commands (`python -m chalicelib.local|ops`): readable lines on stderr, their stdout being their
    answer; the invocations they run log there too, at LOG_LEVEL; botocore and PynamoDB quiet."""
    global _configured
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pynamodb", "botocore"):  # both announce routine facts (settings file, credentials) at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with _lock:
        _configured = True


def reset() -> None:
    """Forget the configuration (tests that change LOG_FORMAT or LOG_FILE)."""
    global _configured, _tracer
    with _lock:
        _configured = False
        _tracer = None


def setting(name: str) -> Any:
    from chalicelib.config import get_settings

    return getattr(get_settings(), name)


# --- metrics ------------------------------------------------------------------------------------------------------
def _write_metrics(inv: Invocation) -> None:
    """The invocation's metrics as one CloudWatch EMF line (stdout in AWS; METRICS_FILE locally)."""
    if not inv.metrics:
        return
    try:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        metrics = EphemeralMetrics(namespace=setting("metrics_namespace"), service=SERVICE)
        for name, value in inv.dimensions.items():
            metrics.add_dimension(name=name, value=value)
        for name, unit, amount in inv.metrics:
            metrics.add_metric(name=name, unit=MetricUnit(unit), value=amount)
        line = json.dumps(metrics.serialize_metric_set(), separators=(",", ":"))
    except Exception:  # a metric never fails what it measures
        log.warning("metrics of %s not written", inv.kind, exc_info=True)
        return
    path = setting("metrics_file")
    if path:
        with _lock, open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    else:
        print(line, flush=True)


# --- tracing ------------------------------------------------------------------------------------------------------
_tracer: Any = None


def tracing_on() -> bool:
    """X-Ray active tracing: Lambda sets AWS_XRAY_DAEMON_ADDRESS only then (POWERTOOLS_TRACE_DISABLED turns it off)."""
    return bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS")) and \
        os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")


def _start_tracing() -> None:
    """Powertools' Tracer patching botocore, so every DynamoDB, SES, S3 and SQS call is a subsegment. Imported
    only when tracing is on: aws_xray_sdk builds a botocore client at import, here on the process's shared
    loader (~35 ms instead of ~220 ms re-reading botocore's models)."""
    global _tracer
    if not tracing_on():
        return
    import botocore.session

    from chalicelib import aws

    plain = botocore.session.get_session

    def shared(env_vars: Any = None) -> Any:
        fresh = plain(env_vars)
        fresh.register_component("data_loader", aws.loader())
        return fresh

    botocore.session.get_session = shared
    try:
        import aws_xray_sdk.core  # noqa: F401 - its recorder's sampling client, on the shared loader
    finally:
        botocore.session.get_session = plain
    from aws_lambda_powertools import Tracer

    _tracer = Tracer(service=SERVICE, patch_modules=["botocore"])


@contextlib.contextmanager
def _traced(kind: str, inv: Invocation) -> Iterator[None]:
    if _tracer is None:
        yield
        return
    with _tracer.provider.in_subsegment(f"## {kind} {inv.fields.get('route') or inv.fields.get('job_kind') or ''}"
                                        .strip()) as subsegment:
        try:
            yield
        finally:
            for key in ("route", "tenant", "status", "job_kind"):
                if key in inv.fields:
                    subsegment.put_annotation(key=key, value=inv.fields[key])
