"""Score routes of a client: health, lead score and its history, recalculation, and feedback."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from chalice import Blueprint
from pydantic import Field

from chalicelib.domain import integration_cases, scoring_cases
from chalicelib.domain.feedback import Feedback
from chalicelib.handlers.fields import Id, ListQuery, Model, Strict, Text, out_model, page_of
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)
CLIENT = "/v1/clients/{client_id}"


class FactorOut(Model):
    name: Literal["payment_history", "project_frequency", "communication_engagement", "outstanding_balance_ratio",
                  "days_since_last_project"]
    value: float | None
    score: int
    weight: float
    contribution: float


class HealthOut(Model):
    health_score: int
    risk_level: Literal["low", "medium", "high"]
    churn_probability: float
    at_risk: bool
    calculated_at: datetime
    feedback_adjustment: int
    factors: list[FactorOut]


class LeadScoreOut(Model):
    total_score: int
    demographic_score: int
    behavioral_score: int
    engagement_score: int
    firmographic_score: int
    classification: Literal["hot", "warm", "cold"]
    rule_breakdown: dict[str, list[dict[str, Any]]]
    previous_score: int | None
    score_changed_at: datetime | None
    has_improved: bool
    has_declined: bool
    calculated_at: datetime


class LeadHistoryOut(Model):
    score: int
    previous_score: int | None
    change: int
    change_reason: str
    recorded_at: datetime


class FeedbackIn(Strict):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Text(2000)] | None = None
    project_id: Id | None = None


FeedbackOut = out_model("Feedback", Feedback)


@api(bp, "GET", CLIENT + "/health", summary="Health score, risk, churn and the five factors", tag="scores",
     response=HealthOut)
def get_health(ctx: Ctx, client_id: str) -> dict[str, Any]:
    return scoring_cases.health_view(ctx.stores(), client_id)


@api(bp, "GET", CLIENT + "/lead-score", summary="Lead score with its four dimensions and class", tag="scores",
     response=LeadScoreOut)
def get_lead_score(ctx: Ctx, client_id: str) -> dict[str, Any]:
    return scoring_cases.lead_view(ctx.stores(), client_id)


@api(bp, "POST", CLIENT + "/lead-score/recalculate", summary="Recalculate the client's scores now",
     need="manager", tag="scores", response=LeadScoreOut)
def recalculate(ctx: Ctx, client_id: str) -> dict[str, Any]:
    return scoring_cases.recalculate(ctx.stores(), client_id)


@api(bp, "GET", CLIENT + "/lead-score/history", summary="Lead score changes, newest first", tag="scores",
     query=ListQuery, response=page_of(LeadHistoryOut), list_response=True)
def lead_history(ctx: Ctx, client_id: str) -> dict[str, Any]:
    params = ctx.query()
    scope = query_scope(f"lead-history:{client_id}", {})
    changes, after = scoring_cases.lead_history(ctx.stores(), client_id, params.limit,
                                                decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [c.public() for c in changes],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", CLIENT + "/feedback", summary="Record a satisfaction rating (feeds the health score)",
     need="agent", tag="scores", body=FeedbackIn, response=FeedbackOut, status=201, idempotent=True)
def add_feedback(ctx: Ctx, client_id: str) -> dict[str, Any]:
    data = ctx.body().model_dump(exclude_none=True)
    return integration_cases.add_feedback(ctx.stores(), client_id, data, actor=ctx.actor).public()
