"""Score use cases: recompute one client's figures, health and lead score from its records, and read them back."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain import client_cases
from chalicelib.domain.clients import Client
from chalicelib.domain.ports import Position, Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.scoring import HEALTH, LEAD, Inputs, LeadChange, StoredScore, classify, score
from chalicelib.domain.values import iso, utcnow


def rescore(stores: Stores, client_id: str, now: datetime | None = None) -> Client:
    """Recompute the client's revenue figures, health and lead score; write what changed.

    Safe to run any number of times (stream redeliveries, the daily job): equal results write nothing, and a
    lead score change leaves exactly one history entry. Scores and figures are written only over the state
    they were computed from, so of two rescores racing (a request's and the stream's) the one that read older
    records reads again instead of writing stale figures.
    """
    now = now or utcnow()
    return retrying(lambda: _rescore_once(stores, client_id, now), "the client's scores")


def _rescore_once(stores: Stores, client_id: str, now: datetime) -> Client:
    records = stores.facts.client_records(client_id)
    inputs = Inputs(records.client, records.contacts, records.communications, records.projects, records.invoices,
                    [f.rating for f in records.feedback], now)
    scored = score(inputs, stores.settings.get("lead-score-thresholds"))
    h, lead = scored.health, scored.lead
    health_data = {"health_score": h.health_score, "risk_level": h.risk_level,
                   "churn_probability": h.churn_probability, "at_risk": h.at_risk,
                   "feedback_adjustment": h.feedback_adjustment, "factors": [asdict(f) for f in h.factors]}
    before = records.scores.get(LEAD)
    previous = before.data if before else None
    lead_data = {**asdict(lead), "previous_score": previous["previous_score"] if previous else None,
                 "score_changed_at": previous["score_changed_at"] if previous else None}
    history = None
    if previous is None or previous["total_score"] != lead.total_score:
        old_total = previous["total_score"] if previous else None
        lead_data.update(previous_score=old_total, score_changed_at=iso(now))
        history = {"id": str(ULID.from_datetime(now)), "score": lead.total_score, "previous_score": old_total,
                   "change": lead.total_score - (old_total or 0), "recorded_at": now,
                   "change_reason": change_reason(previous, lead_data)}
    stores.facts.save_scores(client_id, records.scores, health_data, lead_data, history, now)
    return client_cases.save_derived(stores, records.client, lambda c: scored.client_fields, now)


def rescore_page(stores: Stores, after: str | None, *, page: int = 100, now: datetime | None = None
                 ) -> tuple[int, str | None]:
    """One page of the pass in list order from the cursor `after`: (clients scored, the cursor to resume from;
    None once the pass is over). A page done twice writes nothing new (equal scores write nothing)."""
    client_ids = list(itertools.islice(stores.clients.client_ids(("live", "1"), after=after), page))
    for client_id in client_ids:
        rescore(stores, client_id, now)
    return len(client_ids), (client_ids[-1] if len(client_ids) == page else None)


def change_reason(previous: dict | None, current: dict) -> str:
    """Which rules moved the score, e.g. "engagement.portal_access +8, demographic.has_phone -4"."""
    if previous is None:
        return "first calculation"

    def points(data: dict) -> dict[str, int]:
        return {f"{dim}.{r['rule']}": r["points"] for dim, rules in data["rule_breakdown"].items() for r in rules}

    before, after = points(previous), points(current)
    moved = [f"{rule} {after.get(rule, 0) - before.get(rule, 0):+d}" for rule in dict.fromkeys([*after, *before])
             if after.get(rule, 0) != before.get(rule, 0)]
    return ", ".join(moved) or "recalculated"


def _stored(stores: Stores, client_id: str, name: str) -> StoredScore:
    """A stored breakdown (HEALTH or LEAD); a client never scored yet is scored now."""
    stored = stores.facts.score(client_id, name)
    if stored is None:
        stores.clients.get(client_id)  # 404 for an unknown client
        rescore(stores, client_id)
        stored = stores.facts.score(client_id, name)
        assert stored is not None, "a rescore stores both breakdowns"
    return stored


def health_view(stores: Stores, client_id: str) -> dict[str, Any]:
    stored = _stored(stores, client_id, HEALTH)
    return {**stored.data, "calculated_at": iso(stored.calculated_at)}


def lead_view(stores: Stores, client_id: str) -> dict[str, Any]:
    """The lead score with its class under the tenant's current thresholds."""
    stored = _stored(stores, client_id, LEAD)
    data, previous = stored.data, stored.data["previous_score"]
    return {**data, "classification": classify(data["total_score"], stores.settings.get("lead-score-thresholds")),
            "has_improved": previous is not None and data["total_score"] > previous,
            "has_declined": previous is not None and data["total_score"] < previous,
            "calculated_at": iso(stored.calculated_at)}


def recalculate(stores: Stores, client_id: str) -> dict[str, Any]:
    """Rescore the client now and answer its lead score."""
    rescore(stores, client_id)
    return lead_view(stores, client_id)


def lead_history(stores: Stores, client_id: str, limit: int, after: Position | None
                 ) -> tuple[list[LeadChange], Position | None]:
    """A page of the client's lead score changes, newest first (404 for an unknown client)."""
    stores.clients.get(client_id)
    return stores.facts.lead_history(client_id, limit, after)


def reclassify_all(stores: Stores) -> int:
    """After the thresholds change, every scored client's class follows them (equal classes write nothing)."""
    thresholds = stores.settings.get("lead-score-thresholds")
    moved: set[str] = set()

    def reclassify(wanted: str) -> Callable[[Client], dict[str, Any]]:
        def derive(client: Client) -> dict[str, Any]:
            if client.lead_classification != wanted:
                moved.add(client.id)
            return {"lead_classification": wanted}
        return derive

    for client_id in stores.clients.all_ids():
        stored = stores.facts.score(client_id, LEAD)
        if stored is not None:
            client_cases.update_derived(stores, client_id, reclassify(classify(stored.data["total_score"], thresholds)))
    return len(moved)
