"""Segments: dynamic ones select clients by criteria on a refresh schedule, static ones are hand-picked."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from chalicelib.domain.clients import Client
from chalicelib.domain.segment_criteria import Criteria, matches
from chalicelib.domain.values import Record, utcnow

SegmentType = Literal["dynamic", "static"]
Frequency = Literal["realtime", "hourly", "daily", "weekly", "manual"]
AddedMethod = Literal["manual", "automatic"]

PERIODS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
RefreshStatus = Literal["queued", "running", "done", "failed"]
STALE_REFRESH = timedelta(minutes=30)  # a refresh with no progress for this long is lost: the schedule starts anew


class RefreshProgress(Record):
    """The segment's latest refresh, a `segment_refresh` job: how far it got (`processed` of about `total`
    candidates; `total` is null when uncounted). Only the job it names writes it."""

    job_id: str
    status: RefreshStatus
    processed: int = 0
    total: int | None = None
    error: str | None = None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def under_way(self) -> bool:
        return self.status in ("queued", "running")


class Segment(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    name: str
    slug: str
    description: str | None = None
    type: SegmentType
    criteria: dict[str, Any] | None = None
    color: str | None = None
    icon: str | None = None
    is_system: bool = False
    is_active: bool = True
    is_public: bool = True
    client_count: int = 0
    last_refreshed_at: datetime | None = None
    refresh_frequency: Frequency = "daily"
    refresh_after: str | None = Field(default=None, exclude=True)  # set by older versions: an unfinished refresh
    refresh: RefreshProgress | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(default=None, exclude=True)
    version: int = Field(default=0, exclude=True)

    @property
    def is_dynamic(self) -> bool:
        return self.type == "dynamic"

    @property
    def is_static(self) -> bool:
        return self.type == "static"

    @property
    def refreshing(self) -> bool:
        """A refresh job is queued or running: members and `client_count` are those found so far."""
        return self.refresh is not None and self.refresh.under_way

    def needs_refresh(self, now: datetime | None = None) -> bool:
        """Due for recalculation: never filled, cut off mid-way, or older than its frequency allows; not while a
        refresh is under way (unless it made no progress for STALE_REFRESH: its job is lost).

        Static and `manual` segments never refresh by themselves; `realtime` ones follow client changes once filled.
        """
        if not (self.is_dynamic and self.is_active and self.deleted_at is None):
            return False
        if self.refresh_frequency == "manual":
            return False
        now = now or utcnow()
        if self.refresh is not None and self.refresh.under_way and now - self.refresh.updated_at < STALE_REFRESH:
            return False
        if self.last_refreshed_at is None or self.refresh_after is not None or self.refreshing:
            return True
        period = PERIODS.get(self.refresh_frequency)
        return period is not None and now - self.last_refreshed_at >= period

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        return {**super().public(), "refresh": self.refresh.public() if self.refresh else None,
                "needs_refresh": self.needs_refresh(now), "refreshing": self.refreshing}


def list_order(segment: Segment) -> list[str]:
    """Lists of segments go by name (ignoring case), ids breaking ties."""
    return [segment.name.casefold(), segment.id]


def belongs(criteria: Criteria, client: Client) -> bool:
    """Dynamic membership: archived clients never belong, whatever the criteria say."""
    return not client.is_archived and matches(criteria, client)


class MemberEntry(Record):
    """A client's membership of a segment as stored: when, by whom and how it was added."""

    client_id: str
    added_at: datetime | None = None
    added_by: str | None = None
    added_method: AddedMethod | None = None


class Member(Record):
    """A membership as answered: with the client's current name."""

    client_id: str
    name: str
    added_at: datetime
    added_by: str | None = None
    added_method: AddedMethod
