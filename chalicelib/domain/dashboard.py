"""The client dashboard: one summary of a client's contacts, communications, money, health and lead score."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from chalicelib.domain.communications import Communication
from chalicelib.domain.values import money

COMM_TYPES = ("email", "phone", "sms", "meeting", "note")


def summary(records: Any, activity: list[dict], lead: dict[str, Any]) -> dict[str, Any]:
    """`records` are the client's (facts.ClientRecords); `activity` its newest timeline entries."""
    client = records.client
    comms = [c for c in records.communications if c.deleted_at is None]
    by_type = Counter(c.type for c in comms)
    invoices = [i for i in records.invoices if i.kind == "invoice"]
    overdue = sum((i.amount for i in invoices if i.status == "overdue"), Decimal("0"))
    return {
        "client": client.public(),
        "contacts_count": sum(1 for c in records.contacts if c.deleted_at is None),
        "recent_activity": activity,
        "communications_by_type": {t: by_type.get(t, 0) for t in COMM_TYPES},
        "open_followups": [_followup(c) for c in sorted((c for c in comms if c.requires_followup),
                                                          key=lambda c: (str(c.followup_date), c.id))],
        "financial_summary": {
            "currency": client.currency,
            "lifetime_revenue": money(client.lifetime_revenue),
            "outstanding_balance": money(client.outstanding_balance),
            "overdue_balance": money(overdue),
            "credit_limit": money(client.credit_limit) if client.credit_limit is not None else None,
            "credit_available": money(client.credit_limit - client.outstanding_balance)
            if client.credit_limit is not None else None,
            "invoices_count": len(invoices),
            "open_quotes_count": sum(1 for i in records.invoices if i.kind == "quote" and i.status == "open"),
            "projects_count": client.projects_count,
            "open_projects_count": sum(1 for p in records.projects if p.is_open),
        },
        "health": {"health_score": client.health_score, "risk_level": client.risk_level,
                   "churn_probability": client.churn_probability, "at_risk": client.at_risk},
        "lead_score": {"total_score": lead["total_score"], "classification": lead["classification"]},
    }


def _followup(comm: Communication) -> dict[str, Any]:
    return {"id": comm.id, "type": comm.type, "subject": comm.subject,
            "followup_date": comm.followup_date.isoformat() if comm.followup_date else None,
            "followup_notes": comm.followup_notes}
