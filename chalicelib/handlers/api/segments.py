"""Segment routes: segments, their refresh, members, duplicates, and the segments of a client."""
from __future__ import annotations

from typing import Annotated, Any

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.domain import segment_cases
from chalicelib.domain.segments import Frequency, Member, Segment, SegmentType, list_order
from chalicelib.handlers.fields import Color, Icon, Id, ListQuery, Strict, Text, out_model, page_of, patch_of
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api, json_response

bp = Blueprint(__name__)
BASE = "/v1/segments"
ONE = BASE + "/{segment_id}"


class SegmentCreate(Strict):
    name: Annotated[str, Text(100, 1)]
    description: Annotated[str, Text(1000)] | None = None
    type: SegmentType
    criteria: dict[str, Any] | None = Field(None, description=(
        '{"match": "all"|"any", "conditions": [{"field", "operator", "value"}]}; checked against the client '
        "fields, the operators and the tenant's custom fields, each bad part named in the 422"))
    color: Color | None = None
    icon: Icon | None = None
    is_system: bool = False
    is_active: bool = True
    is_public: bool = True
    refresh_frequency: Frequency = "daily"


SegmentUpdate = patch_of("SegmentUpdate", SegmentCreate, not_null=segment_cases.NOT_NULL, skip=("is_system", "type"))
SegmentOut = out_model("Segment", Segment, needs_refresh=(bool, ...), refreshing=(bool, Field(..., description=(
    "a refresh job is queued or running: members and client_count are those found so far; `refresh` shows how far "
    "it got (processed of about total candidates)"))))


class DuplicateIn(Strict):
    name: Annotated[str, Text(100, 1)]


class MemberIn(Strict):
    client_id: Id


MemberOut = out_model("Member", Member)


@api(bp, "GET", BASE, summary="List segments by name", tag="segments", query=ListQuery,
     response=page_of(SegmentOut), list_response=True)
def list_segments(ctx: Ctx) -> dict[str, Any]:
    params = ctx.query()
    segments = segment_cases.list_segments(ctx.stores())
    page, next_cursor = page_of_list(segments, list_order, tenant_id=ctx.tenant_id, scope=query_scope("segments", {}),
                                     limit=params.limit, cursor=params.cursor)
    return {"items": [g.public() for g in page], "next_cursor": next_cursor}


@api(bp, "POST", BASE, summary="Create a segment (a dynamic one starts its refresh job: `refreshing`)", need="manager",
     tag="segments", body=SegmentCreate, response=SegmentOut, status=201, idempotent=True)
def create_segment(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body()
    data = {**body.model_dump(exclude_none=True), "criteria": body.criteria}
    as_admin = ctx.principal is not None and ctx.principal.at_least("admin")
    return segment_cases.create_segment(ctx.stores(), data, actor=ctx.actor, as_admin=as_admin).public()


@api(bp, "GET", ONE, summary="Get a segment", tag="segments", response=SegmentOut)
def get_segment(ctx: Ctx, segment_id: str) -> dict[str, Any]:
    return segment_cases.get_segment(ctx.stores(), segment_id).public()


@api(bp, "PATCH", ONE, summary="Update the named fields of a segment", need="manager", tag="segments",
     body=SegmentUpdate, response=SegmentOut)
def update_segment(ctx: Ctx, segment_id: str) -> dict[str, Any]:
    return segment_cases.update_segment(ctx.stores(), segment_id, ctx.changes()).public()


@api(bp, "DELETE", ONE, summary="Delete (soft) a segment", need="admin", tag="segments", status=204)
def delete_segment(ctx: Ctx, segment_id: str) -> Response:
    segment_cases.delete_segment(ctx.stores(), segment_id)
    return Response(body="", status_code=204)


@api(bp, "POST", ONE + "/refresh", summary="Recompute membership now (after 5 s the rest runs as a job: `refreshing`)",
     need="manager", tag="segments", response=SegmentOut)
def refresh_segment(ctx: Ctx, segment_id: str) -> dict[str, Any]:
    return segment_cases.refresh_now(ctx.stores(), segment_id).public()


@api(bp, "POST", ONE + "/duplicate", summary="Copy a segment (a static one with its members)", need="manager",
     tag="segments", body=DuplicateIn, response=SegmentOut, status=201, idempotent=True)
def duplicate_segment(ctx: Ctx, segment_id: str) -> dict[str, Any]:
    return segment_cases.duplicate_segment(ctx.stores(), segment_id, ctx.body().name, actor=ctx.actor).public()


@api(bp, "GET", ONE + "/members", summary="Members of a segment, by client name", tag="segments",
     query=ListQuery, response=page_of(MemberOut), list_response=True)
def list_members(ctx: Ctx, segment_id: str) -> dict[str, Any]:
    params = ctx.query()
    scope = query_scope(f"segment-members:{segment_id}", {})
    members, after = segment_cases.member_page(ctx.stores(), segment_id, params.limit,
                                               decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [m.public() for m in members],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", ONE + "/members", summary="Add a client to a static segment (duplicates are skipped)",
     need="manager", tag="segments", body=MemberIn, response=MemberOut, status=201,
     also={200: "Already a member: the membership as it was, nothing changed."})
def add_member(ctx: Ctx, segment_id: str) -> Response:
    member, added = segment_cases.add_member(ctx.stores(), segment_id, ctx.body().client_id, actor=ctx.actor)
    return json_response(member.public(), 201 if added else 200)


@api(bp, "DELETE", ONE + "/members/{client_id}", summary="Remove a client from a static segment",
     need="manager", tag="segments", status=204)
def remove_member(ctx: Ctx, segment_id: str, client_id: str) -> Response:
    segment_cases.remove_member(ctx.stores(), segment_id, client_id)
    return Response(body="", status_code=204)


@api(bp, "GET", "/v1/clients/{client_id}/segments", summary="The segments a client belongs to", tag="segments",
     query=ListQuery, response=page_of(SegmentOut), list_response=True)
def client_segments(ctx: Ctx, client_id: str) -> dict[str, Any]:
    params = ctx.query()
    segments = segment_cases.segments_of_client(ctx.stores(), client_id)
    page, next_cursor = page_of_list(segments, list_order, tenant_id=ctx.tenant_id,
                                     scope=query_scope(f"client-segments:{client_id}", {}), limit=params.limit,
                                     cursor=params.cursor)
    return {"items": [g.public() for g in page], "next_cursor": next_cursor}
