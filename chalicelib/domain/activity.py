"""The audit timeline: one entry per change of a client or one of its children, built from before/after images."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.values import Record, iso

TRACKED = ("client", "contact", "communication", "thread", "project", "invoice", "feedback", "task", "association")

# Figures the system derives (scores, counts, search text) and bookkeeping: not a change anyone made. (A Change
# carries no storage keys: tables/streams.py leaves them out.)
IGNORED = frozenset({
    "tenant_id", "rev", "version", "updated_at", "search",
    "health_score", "risk_level", "churn_probability", "lead_classification", "lifetime_revenue",
    "outstanding_balance", "projects_count", "last_project_at", "avg_response_time_minutes", "response_time_minutes",
    "messages_count", "last_activity_at", "preview", "invitation_hash", "invitation_expires_at", "node_updated_at",
    "status_before_archive", "updated_by",
})


class ActivityEntry(Record):
    """One entry of a client's timeline: who did what to which of its records, and the fields it changed."""

    id: str
    at: datetime
    actor: str | None = None
    action: str
    entity_type: str
    entity_id: str
    changes: dict[str, Any] | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def entry(kind: str, old: dict | None, new: dict | None, event_id: str, now: datetime) -> dict | None:
    """The timeline entry for one change, or None when nothing a person did changed (derived figures only)."""
    image = new or old
    if kind not in TRACKED or image is None:
        return None
    fields = {k for k in (old or {}).keys() | (new or {}).keys() if k not in IGNORED}
    changes = {k: {"from": _plain((old or {}).get(k)), "to": _plain((new or {}).get(k))} for k in sorted(fields)
               if _plain((old or {}).get(k)) != _plain((new or {}).get(k))}
    if old is not None and new is not None and not changes:
        return None
    action = _action(kind, old, new, changes)
    client_id = image["id"] if kind == "client" else image["client_id"]
    entity_id = image.get("related_id") if kind == "association" else image["id"]
    at = (new or {}).get("updated_at") or (new or {}).get("created_at") or now
    after = new or {}
    # Records stamp who changed them last (`updated_by`); a creation names its creator.
    actor = after.get("updated_by") or (after.get("created_by") if old is None else None)
    if action != "updated":  # a creation or deletion is the news; of its fields only the status moves matter
        changes = {k: v for k, v in changes.items() if action != "created" and k in ("status", "archived_at")}
    return {"id": event_id, "client_id": client_id, "at": at, "actor": actor, "action": action,
            "entity_type": kind, "entity_id": entity_id, "changes": changes or None}


def _action(kind: str, old: dict | None, new: dict | None, changes: dict) -> str:
    if old is None:
        return "created"
    if new is None or ("deleted_at" in changes and new.get("deleted_at")):
        return "deleted"
    if kind == "client" and "status" in changes:
        if changes["status"]["to"] == "archived":
            return "archived"
        if changes["status"]["from"] == "archived":
            return "restored"
    return "updated"
