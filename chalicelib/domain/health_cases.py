"""The deep health check: how far behind the stream is, and what the last schedule runs did."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain import job_cases
from chalicelib.domain.ports import Directory, Stores
from chalicelib.domain.schedule_cases import FAN_OUT
from chalicelib.domain.values import iso


@dataclass(frozen=True)
class Heartbeat:
    """When a function last did its work, how far behind it was then, and how much it handled."""

    at: datetime
    lag_seconds: float | None = None
    records: int | None = None


def stream_status(beat: Heartbeat | None, now: datetime) -> dict[str, Any]:
    """The stream function's last batch: when, how long its oldest record had waited, and how long ago that was."""
    if beat is None:
        return {"last_batch_at": None, "lag_seconds": None, "seconds_since_last_batch": None, "records": None}
    return {"last_batch_at": iso(beat.at), "lag_seconds": beat.lag_seconds, "records": beat.records,
            "seconds_since_last_batch": round((now - beat.at).total_seconds(), 1)}


def schedule_runs(system: Stores) -> dict[str, Any]:
    """Each schedule's newest fan-out job (the system partition `system`): when it ran, its status, its tenants."""
    runs: dict[str, Any] = {}
    for schedule, kind in FAN_OUT.items():
        jobs, _ = job_cases.list_jobs(system, kind, 1, None)
        runs[schedule] = None if not jobs else {
            "job_id": jobs[0].id, "started_at": iso(jobs[0].created_at), "status": jobs[0].status,
            "finished_at": iso(jobs[0].finished_at) if jobs[0].finished_at else None,
            "tenants": jobs[0].result.get("tenant_jobs", 0), "error": jobs[0].error}
    return runs


def deep_status(directory: Directory, system: Stores, now: datetime) -> dict[str, Any]:
    """What an admin's `GET /v1/health?deep=true` adds: the stream's last batch and each schedule's last run."""
    return {"stream": stream_status(directory.heartbeat("stream"), now), "schedules": schedule_runs(system)}
