"""A client's overview routes: the dashboard and the activity timeline."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from chalice import Blueprint

from chalicelib.domain import overview_cases
from chalicelib.handlers.api.clients import ClientOut
from chalicelib.handlers.fields import ListQuery, Model, page_of
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)
CLIENT = "/v1/clients/{client_id}"


class ActivityOut(Model):
    id: str
    at: datetime
    actor: str | None
    action: str
    entity_type: str
    entity_id: str
    changes: dict[str, Any] | None


class DashboardOut(Model):
    client: ClientOut
    contacts_count: int
    recent_activity: list[ActivityOut]
    communications_by_type: dict[str, int]
    open_followups: list[dict[str, Any]]
    financial_summary: dict[str, Any]
    health: dict[str, Any]
    lead_score: dict[str, Any]


@api(bp, "GET", CLIENT + "/activity", summary="The client's audit timeline (it and its children), newest first",
     query=ListQuery, response=page_of(ActivityOut), list_response=True)
def activity(ctx: Ctx, client_id: str):
    params = ctx.query()
    scope = query_scope(f"activity:{client_id}", {})
    items, after = overview_cases.timeline(ctx.stores(), client_id, params.limit,
                                           decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [i.public() for i in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "GET", CLIENT + "/dashboard", summary="Summary, contacts, activity, communications, money, health, lead",
     response=DashboardOut)
def get_dashboard(ctx: Ctx, client_id: str):
    return overview_cases.client_dashboard(ctx.stores(), client_id)
