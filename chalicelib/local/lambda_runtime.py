"""Finds the app's non-HTTP handlers and calls them the way Lambda would: a JSON-shaped event and a context."""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.local import LambdaContext

log = logging.getLogger("nexus.local")

Handler = Callable[[dict, Any], Any]
DEFAULT_MEMORY_MB = 512
DEFAULT_TIMEOUT_S = 900


@dataclass(frozen=True)
class EventSource:
    """One registered handler: its name, the callable, and the chalice event-source config it came from."""

    name: str
    handler: Handler
    config: Any


def resolve_handler(handler_string: str) -> Handler:
    """`app.refresh_segments` → the object Lambda would call (chalice's EventSourceHandler wrapper)."""
    module_name, _, attr = handler_string.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def lambda_context(function_name: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> LambdaContext:
    return LambdaContext(function_name=function_name, memory_size=DEFAULT_MEMORY_MB,
                         max_runtime_ms=timeout_s * 1000)


INBOUND_FUNCTION = "on_inbound_email"  # contract §14: a plain Lambda whose S3 trigger the template declares


def inbound_function(app: Any) -> EventSource | None:
    """The app's `on_inbound_email` plain Lambda function, when it registers one."""
    for fn in getattr(app, "pure_lambda_functions", []):
        if fn.name == INBOUND_FUNCTION:
            try:
                return EventSource(fn.name, resolve_handler(fn.handler_string), fn)
            except (ImportError, AttributeError) as exc:
                log.error("cannot load handler %s: %s", fn.handler_string, exc)
    return None


def event_sources(app: Any, kind: str) -> list[EventSource]:
    """The app's event sources of one kind: `schedule`, `dynamodb` or `s3`."""
    wanted = {"schedule": "schedule_expression", "dynamodb": "stream_arn", "s3": "bucket"}[kind]
    found = []
    for config in getattr(app, "event_sources", []):
        if not hasattr(config, wanted):
            continue
        # chalice keeps the wrapped handler by name; the handler string always says `app.` for app handlers.
        handler = getattr(app, "handler_map", {}).get(config.name)
        try:
            handler = handler or resolve_handler(config.handler_string)
        except (ImportError, AttributeError) as exc:
            log.error("cannot load handler %s for %s: %s", config.handler_string, config.name, exc)
            continue
        found.append(EventSource(config.name, handler, config))
    return found
