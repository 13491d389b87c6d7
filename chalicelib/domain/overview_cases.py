"""A client's overview: its audit timeline, and the dashboard that sums up its records."""
from __future__ import annotations

from typing import Any

from chalicelib.domain import dashboard, scoring_cases
from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.ports import Position, Stores

RECENT = 10  # the timeline entries a dashboard shows


def timeline(stores: Stores, client_id: str, limit: int,
             after: Position | None) -> tuple[list[ActivityEntry], Position | None]:
    """A page of the client's timeline (it and its children), newest first."""
    stores.clients.get(client_id)  # 404 for a client of another tenant
    return stores.activity.page(client_id, limit, after)


def client_dashboard(stores: Stores, client_id: str) -> dict[str, Any]:
    """Summary, contacts, recent activity, communications, money, health and lead score of one client."""
    lead = scoring_cases.lead_view(stores, client_id)
    records = stores.facts.client_records(client_id)
    recent, _ = stores.activity.page(client_id, RECENT, None)
    return dashboard.summary(records, [e.public() for e in recent], lead)
