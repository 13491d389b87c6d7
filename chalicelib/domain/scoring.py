"""Client health (five weighted factors, churn, risk) and lead score (four 0-25 dimensions); pure functions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.clients import AT_RISK_CHURN, NEW_CLIENT_HEALTH, Client
from chalicelib.domain.communications import Communication
from chalicelib.domain.contacts import Contact
from chalicelib.domain.feedback import Feedback
from chalicelib.domain.integrations import Invoice, Project, figures
from chalicelib.domain.settings import LeadScoreThresholds
from chalicelib.domain.threads import Thread
from chalicelib.domain.values import Record

HEALTH, LEAD = "health", "lead"  # the two stored breakdowns of a client


class StoredScore(Record):
    """A client's stored `health` or `lead` breakdown and when it was calculated."""

    data: dict[str, Any]
    calculated_at: datetime


class LeadChange(Record):
    """One entry of a client's lead score history."""

    score: int
    previous_score: int | None
    change: int
    change_reason: str
    recorded_at: datetime


@dataclass
class ClientRecords:
    """Everything a client's scores are computed from, read in one Query of its partition."""

    client: Client
    contacts: list[Contact] = field(default_factory=list)
    communications: list[Communication] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    threads: list[Thread] = field(default_factory=list)
    scores: dict[str, StoredScore] = field(default_factory=dict)  # by name: HEALTH, LEAD

NEUTRAL = NEW_CLIENT_HEALTH
WEIGHTS = {"payment_history": 0.30, "project_frequency": 0.20, "communication_engagement": 0.15,
           "outstanding_balance_ratio": 0.20, "days_since_last_project": 0.15}
OVERDUE_CAP = 40
DIMENSION_MAX = 25


@dataclass(frozen=True)
class Inputs:
    """Everything scoring reads about one client; soft-deleted contacts and communications are ignored."""

    client: Client
    contacts: list[Contact]
    communications: list[Communication]
    projects: list[Project]
    invoices: list[Invoice]
    ratings: list[int]
    now: datetime

    @property
    def today(self) -> date:
        return self.now.date()

    def live_contacts(self) -> list[Contact]:
        return [c for c in self.contacts if c.deleted_at is None]

    def conversations(self, days: int | None = None) -> list[Communication]:
        """Non-deleted communications other than internal notes, optionally only those of the last `days`."""
        since = self.now - timedelta(days=days) if days is not None else None
        return [c for c in self.communications if c.deleted_at is None and c.type != "note"
                and (since is None or c.occurred_at >= since)]

    def live_projects(self) -> list[Project]:
        return [p for p in self.projects if p.status != "cancelled"]


@dataclass(frozen=True)
class Factor:
    name: str
    value: float | None
    score: int
    weight: float
    contribution: float


@dataclass(frozen=True)
class Health:
    health_score: int
    risk_level: str
    churn_probability: float
    at_risk: bool
    factors: list[Factor]
    feedback_adjustment: int


def _round(x: float) -> int:
    """Halves round up; rounding to 6 places first keeps float noise (72.4999999) from deciding the half."""
    return math.floor(round(x, 6) + 0.5)


def _band(value: float, bands: tuple[tuple[float, int], ...], otherwise: int) -> int:
    """The score of the first band whose upper bound (inclusive) holds the value."""
    return next((score for upper, score in bands if value <= upper), otherwise)


def _payment_history(i: Inputs) -> tuple[float | None, int]:
    """Share of paid or past-due invoices paid on time (paid late = half, unpaid past due = none); 100 x share."""
    credits = []
    for inv in (v for v in i.invoices if v.kind == "invoice"):
        if inv.status == "paid":
            late = inv.due_date is not None and inv.paid_at is not None and inv.paid_at.date() > inv.due_date
            credits.append(0.5 if late else 1.0)
        elif inv.status == "overdue" or (inv.status == "open" and inv.due_date is not None
                                         and inv.due_date < i.today):
            credits.append(0.0)
    if not credits:
        return None, NEUTRAL
    share = sum(credits) / len(credits)
    return round(share, 4), _round(100 * share)


def _project_frequency(i: Inputs) -> tuple[float | None, int]:
    """Non-cancelled projects started in the last 365 days: 0 -> 20, 1 -> 60, 2 -> 75, 3 -> 85, 4+ -> 100."""
    live = i.live_projects()
    if not live:
        return None, NEUTRAL
    year_ago = i.today - timedelta(days=365)
    n = sum(1 for p in live if p.start_date is not None and year_ago <= p.start_date <= i.today)
    return float(n), (20, 60, 75, 85, 100)[min(n, 4)]


def _communication_engagement(i: Inputs) -> tuple[float | None, int]:
    """Communications other than notes in the last 90 days: 0 -> 30, 1-2 -> 60, 3-5 -> 80, 6+ -> 100."""
    if not i.conversations():
        return None, NEUTRAL
    n = len(i.conversations(days=90))
    return float(n), _band(n, ((0, 30), (2, 60), (5, 80)), 100)


def _outstanding_balance_ratio(i: Inputs) -> tuple[float | None, int]:
    """Open + overdue over open + overdue + paid invoice amounts; 100 x (1 - ratio), at most 40 with any overdue."""
    billed = [v for v in i.invoices if v.kind == "invoice" and v.status in ("open", "overdue", "paid")]
    total = sum((v.amount for v in billed), Decimal(0))
    if not total:
        return None, NEUTRAL
    ratio = float(sum((v.amount for v in billed if v.status != "paid"), Decimal(0)) / total)
    score = _round(100 * (1 - ratio))
    if any(v.status == "overdue" for v in billed):
        score = min(score, OVERDUE_CAP)
    return round(ratio, 4), score


def _days_since_last_project(i: Inputs) -> tuple[float | None, int]:
    """Days since the latest non-cancelled start (future = 0):
    <=30 -> 100, <=90 -> 80, <=180 -> 60, <=365 -> 35, else 10."""
    starts = [p.start_date for p in i.live_projects() if p.start_date is not None]
    if not starts:
        return None, NEUTRAL
    days = max(0, (i.today - max(starts)).days)
    return float(days), _band(days, ((30, 100), (90, 80), (180, 60), (365, 35)), 10)


FACTORS = {f.__name__.lstrip("_"): f for f in (_payment_history, _project_frequency, _communication_engagement,
                                               _outstanding_balance_ratio, _days_since_last_project)}


def feedback_adjustment(ratings: list[int]) -> int:
    """(average rating - 3) x 5, so -10..+10; 0 without ratings. Ratings outside 1-5 are ignored."""
    valid = [r for r in ratings if 1 <= r <= 5]
    return _round((sum(valid) / len(valid) - 3) * 5) if valid else 0


def health(inputs: Inputs) -> Health:
    """Weighted sum of the five factor scores (0-100 each, 70 without data) plus the feedback adjustment,
    rounded and clamped to 0-100; churn and risk follow from it."""
    factors = []
    for name, measure in FACTORS.items():
        value, score = measure(inputs)
        factors.append(Factor(name, value, score, WEIGHTS[name], round(score * WEIGHTS[name], 2)))
    adjustment = feedback_adjustment(inputs.ratings)
    score = max(0, min(100, _round(sum(f.score * f.weight for f in factors) + adjustment)))
    churn = churn_probability(score)
    return Health(score, risk_level(score, churn), churn, churn > float(AT_RISK_CHURN), factors, adjustment)


def churn_probability(health_score: int) -> float:
    """1 / (1 + e^(0.12 x (health - 45))), 4 decimals: 70 -> 0.0474, 45 -> 0.5, 30 -> 0.8581."""
    return round(1 / (1 + math.exp(0.12 * (health_score - 45))), 4)


def risk_level(health_score: int, churn: float) -> str:
    """high when churn > 0.7 or health < 40; low when health >= 65 and churn < 0.3; medium otherwise."""
    if churn > float(AT_RISK_CHURN) or health_score < 40:
        return "high"
    if health_score >= 65 and churn < 0.3:
        return "low"
    return "medium"


@dataclass(frozen=True)
class LeadScore:
    demographic_score: int
    behavioral_score: int
    engagement_score: int
    firmographic_score: int
    total_score: int
    rule_breakdown: dict[str, list[dict]]


def _rule(name: str, points: int, maximum: int) -> dict:
    return {"rule": name, "points": points, "max": maximum}


def _flag(name: str, on: object, points: int) -> dict:
    return _rule(name, points if on else 0, points)


def _demographic(i: Inputs) -> list[dict]:
    c = i.client
    return [_flag("has_email", c.email, 5), _flag("has_phone", c.phone, 4), _flag("has_website", c.website, 3),
            _flag("has_address", any(a.line1 or a.city for a in c.addresses), 4),
            _flag("has_primary_contact", any(x.is_primary for x in i.live_contacts()), 5),
            _flag("has_industry", c.industry, 2),
            _flag("has_registration_or_vat", c.registration_number or c.vat_number, 2)]


def _behavioral(i: Inputs) -> list[dict]:
    since = i.now - timedelta(days=180)
    n = len(i.live_projects())
    issued = any(v.kind in ("quote", "invoice") and v.issued_at is not None and v.issued_at >= since
                 for v in i.invoices)
    started = any(p.start_date is not None and p.start_date >= since.date() for p in i.live_projects())
    return [_rule("projects", (0, 8, 12, 15)[min(n, 3)], 15),
            _flag("quote_or_invoice_last_180_days", issued, 5),
            _flag("project_starting_last_180_days_or_upcoming", started, 5)]


def _engagement(i: Inputs) -> list[dict]:
    inbound = sum(1 for c in i.conversations(days=90) if c.direction == "inbound")
    return [_flag("portal_access", any(c.portal_access for c in i.live_contacts()), 8),
            _rule("inbound_communications_last_90_days", _band(inbound, ((0, 0), (1, 5), (4, 9)), 12), 12),
            _flag("communication_last_30_days", i.conversations(days=30), 5)]


def _firmographic(i: Inputs) -> list[dict]:
    revenue = figures(i.projects, i.invoices).lifetime_revenue
    band = next((pts for floor, pts in ((50_000, 17), (10_000, 12), (1_000, 6)) if revenue >= floor), 0)
    return [_rule("client_type", {"company": 5, "venue": 3}.get(i.client.type, 0), 5),
            _flag("has_industry", i.client.industry, 3),
            _rule("lifetime_revenue", band, 17)]


DIMENSIONS = {"demographic": _demographic, "behavioral": _behavioral, "engagement": _engagement,
              "firmographic": _firmographic}


def lead_score(inputs: Inputs) -> LeadScore:
    """Four dimensions of documented rules, each capped at 25; the total is their sum (0-100)."""
    breakdown = {name: rules(inputs) for name, rules in DIMENSIONS.items()}
    s = {name: min(DIMENSION_MAX, sum(r["points"] for r in rules)) for name, rules in breakdown.items()}
    return LeadScore(s["demographic"], s["behavioral"], s["engagement"], s["firmographic"], sum(s.values()),
                     breakdown)


def classify(total: int, thresholds: LeadScoreThresholds) -> str:
    """hot at or above the hot threshold, warm at or above warm, else cold (defaults 80 / 50)."""
    if total >= thresholds.hot:
        return "hot"
    return "warm" if total >= thresholds.warm else "cold"


@dataclass(frozen=True)
class Scored:
    """What scoring gives one client: health, lead score, and the fields they set on the client record."""

    health: Health
    lead: LeadScore
    client_fields: dict[str, Any]


def score(inputs: Inputs, thresholds: LeadScoreThresholds) -> Scored:
    """Health, lead score and the client's derived fields (revenue figures, health, risk, churn, lead class);
    one function for a client being created (no records yet) and for every later rescore, so they agree."""
    figs, h, lead = figures(inputs.projects, inputs.invoices), health(inputs), lead_score(inputs)
    return Scored(h, lead, {
        "lifetime_revenue": figs.lifetime_revenue, "outstanding_balance": figs.outstanding_balance,
        "projects_count": figs.projects_count, "last_project_at": figs.last_project_at,
        "health_score": h.health_score, "risk_level": h.risk_level, "churn_probability": h.churn_probability,
        "lead_classification": classify(lead.total_score, thresholds)})
