"""Runs the app's `@app.schedule` handlers on their rate with EventBridge-shaped events, as AWS would."""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.local.lambda_runtime import Handler, event_sources, lambda_context

log = logging.getLogger("nexus.local.schedule")

SCALE_ENV = "LOCAL_SCHEDULE_SCALE"
_RATE = re.compile(r"^\s*rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(expression: Any) -> float | None:
    """Seconds between runs of a chalice `Rate` or a `rate(...)` string; None for cron and anything else."""
    text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower().rstrip("s")]


def scale_from_env() -> float:
    """LOCAL_SCHEDULE_SCALE=60 runs a 5-minute rate every 5 seconds; 0 turns the schedules off."""
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV} must be a number, got {raw!r}") from None
    if scale < 0:
        raise ValueError(f"{SCALE_ENV} must not be negative, got {raw!r}")
    return scale


def scheduled_event(rule_name: str, region: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The event EventBridge passes to a scheduled Lambda (every key chalice's CloudWatchEvent reads)."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{rule_name}"],
        "detail": {},
    }


@dataclass(frozen=True)
class Job:
    name: str
    handler: Handler
    interval: float  # seconds, already scaled


class Scheduler:
    """One thread per job; a run that overlaps the next slot pushes it back rather than stacking runs."""

    def __init__(self, jobs: list[Job], region: str) -> None:
        self.jobs = jobs
        self.region = region
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_app(cls, app: Any, region: str, scale: float | None = None) -> Scheduler:
        scale = scale_from_env() if scale is None else scale
        jobs = []
        for source in event_sources(app, "schedule"):
            expression = source.config.schedule_expression
            seconds = interval_seconds(expression)
            text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
            if seconds is None:
                log.warning("schedule %s (%s) is not run locally: only rate(...) is supported", source.name, text)
            elif scale == 0:
                log.info("schedule %s (%s) is off (%s=0)", source.name, text, SCALE_ENV)
            else:
                jobs.append(Job(source.name, source.handler, seconds / scale))
                log.info("schedule %s: %s, every %.1fs locally", source.name, text, seconds / scale)
        return cls(jobs, region)

    def start(self) -> Scheduler:
        self._stop.clear()
        for job in self.jobs:
            thread = threading.Thread(target=self._loop, args=(job,), name=f"schedule-{job.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def run_job(self, job: Job) -> bool:
        """Call the handler once; errors are logged (as CloudWatch would show them) and do not stop the loop."""
        started = time.monotonic()
        try:
            job.handler(scheduled_event(job.name, self.region), lambda_context(job.name))
        except Exception:
            log.exception("scheduled handler %s failed", job.name)
            return False
        log.debug("scheduled handler %s ran in %.2fs", job.name, time.monotonic() - started)
        return True

    def _loop(self, job: Job) -> None:
        # Like EventBridge, the first run comes one interval after start, not at start.
        next_run = time.monotonic() + job.interval
        while not self._stop.wait(max(0.0, next_run - time.monotonic())):
            self.run_job(job)
            next_run += job.interval
            if next_run < time.monotonic():
                next_run = time.monotonic() + job.interval
