"""Delivers the folder queue's job messages to app.run_jobs as SQS-triggered Lambda would: one record per event."""
from __future__ import annotations

import hashlib
import logging
import traceback
from typing import Any

from chalicelib.local.lambda_runtime import EventSource, Handler, lambda_context
from chalicelib.local.polling import Poller
from chalicelib.queue import VISIBILITY_TIMEOUT, FolderQueue, Received

log = logging.getLogger("nexus.local.jobs")

WORKER_TIMEOUT_S = 300  # the run_jobs function's timeout in .chalice/config.json


def sqs_event(message: Received, queue_name: str, region: str) -> dict[str, Any]:
    """The event Lambda passes for one SQS message (every key chalice's SQSRecord reads, and the rest it sends)."""
    import json

    body = json.dumps(message.body, sort_keys=True)
    return {"Records": [{
        "messageId": message.id,
        "receiptHandle": message.receipt,
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(message.receive_count),
                       "SentTimestamp": str(int(message.sent_at * 1000)), "SenderId": "local",
                       "ApproximateFirstReceiveTimestamp": str(int(message.first_received_at * 1000))},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:000000000000:{queue_name}",
        "awsRegion": region,
    }]}


def deliver(queue: FolderQueue, message: Received, handler: Handler, *, queue_name: str, region: str,
            function_name: str = "run_jobs") -> bool:
    """One invocation: a success deletes the message; a failure leaves it to come back (its backoff, or the
    visibility timeout) and notes the error on it, which a dead letter then shows."""
    try:
        handler(sqs_event(message, queue_name, region), lambda_context(function_name, WORKER_TIMEOUT_S))
    except Exception as exc:
        queue.note_error(message.id, traceback.format_exc())
        log.error("job message %s failed (receive %s): %s: %s", message.id, message.receive_count,
                  type(exc).__name__, exc)
        return False
    queue.delete(message.receipt)
    return True


class JobQueueWorker(Poller):
    """Polls DATA_DIR/jobs/ and hands each visible message to the app's SQS handler, one at a time."""

    @property
    def thread_name(self) -> str:
        return "job-queue"

    def __init__(self, source: EventSource, queue: FolderQueue, *, region: str, poll_interval: float = 0.5) -> None:
        self.source = source
        self.queue = queue
        self.region = region
        self.poll_interval = poll_interval
        self.queue_name = getattr(source.config, "queue", None) or "jobs"
        super().__init__()

    def poll_once(self) -> int:
        """Deliver messages until none is visible; answers how many were delivered."""
        delivered = 0
        while not self._stop.is_set():
            got = self.queue.receive(1, VISIBILITY_TIMEOUT)
            if not got:
                break
            deliver(self.queue, got[0], self.source.handler, queue_name=self.queue_name, region=self.region,
                    function_name=self.source.name)
            delivered += 1
        return delivered


def sqs_sources(app: Any) -> list[EventSource]:
    """The app's `@app.on_sqs_message` handlers (chalice keeps each wrapped handler by name)."""
    from chalicelib.local.lambda_runtime import resolve_handler

    found = []
    for config in getattr(app, "event_sources", []):
        if not hasattr(config, "queue") and not hasattr(config, "queue_arn"):
            continue
        handler = getattr(app, "handler_map", {}).get(config.name) or resolve_handler(config.handler_string)
        found.append(EventSource(config.name, handler, config))
    return found
