"""Segment routes: segments, their refresh, members, duplicates, and the segments of a client."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.domain import segment_cases as cases
from chalicelib.domain.errors import Forbidden
from chalicelib.handlers import schemas as s
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api, json_response
from chalicelib.tables.stores import Stores

bp = Blueprint(__name__)
BASE = "/v1/segments"
ONE = BASE + "/{segment_id}"


def _stores(ctx: Ctx) -> Stores:
    return ctx.stores()


@api(bp, "GET", BASE, summary="List segments by name", tag="segments", query=s.ListQuery,
     response=s.page_of(s.SegmentOut), list_response=True)
def list_segments(ctx: Ctx):
    params = ctx.query()
    segments = sorted(_stores(ctx).segments.all(), key=lambda g: (g.name.casefold(), g.id))
    page, next_cursor = page_of_list(segments, lambda g: [g.name.casefold(), g.id], tenant_id=ctx.tenant_id,
                                     scope=query_scope("segments", {}), limit=params.limit, cursor=params.cursor)
    return {"items": [g.public() for g in page], "next_cursor": next_cursor}


@api(bp, "POST", BASE, summary="Create a segment (a dynamic one is filled at once)", need="manager",
     tag="segments", body=s.SegmentCreate, response=s.SegmentOut, status=201, idempotent=True)
def create_segment(ctx: Ctx):
    body = ctx.body()
    data = body.model_dump(exclude_none=True)
    data["criteria"] = body.criteria
    if data.get("is_system") and not ctx.principal.at_least("admin"):
        raise Forbidden("only an admin may create a system segment")
    return cases.create_segment(_stores(ctx), data, actor=ctx.actor).public()


@api(bp, "GET", ONE, summary="Get a segment", tag="segments", response=s.SegmentOut)
def get_segment(ctx: Ctx, segment_id: str):
    return _stores(ctx).segments.get(segment_id).public()


@api(bp, "PATCH", ONE, summary="Update the named fields of a segment", need="manager", tag="segments",
     body=s.SegmentUpdate, response=s.SegmentOut)
def update_segment(ctx: Ctx, segment_id: str):
    body = ctx.body()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return cases.update_segment(_stores(ctx), segment_id, changes).public()


@api(bp, "DELETE", ONE, summary="Delete (soft) a segment", need="admin", tag="segments", status=204)
def delete_segment(ctx: Ctx, segment_id: str):
    cases.delete_segment(_stores(ctx), segment_id)
    return Response(body="", status_code=204)


@api(bp, "POST", ONE + "/refresh", summary="Recompute membership now", need="manager", tag="segments",
     response=s.SegmentOut)
def refresh_segment(ctx: Ctx, segment_id: str):
    stores = _stores(ctx)
    return cases.refresh(stores, stores.segments.get(segment_id), deadline=cases.api_deadline()).public()


@api(bp, "POST", ONE + "/duplicate", summary="Copy a segment (a static one with its members)", need="manager",
     tag="segments", body=s.DuplicateIn, response=s.SegmentOut, status=201, idempotent=True)
def duplicate_segment(ctx: Ctx, segment_id: str):
    name = ctx.body().name
    return cases.duplicate_segment(_stores(ctx), segment_id, name, actor=ctx.actor).public()


@api(bp, "GET", ONE + "/members", summary="Members of a segment, by client name", tag="segments",
     query=s.ListQuery, response=s.page_of(s.MemberOut), list_response=True)
def list_members(ctx: Ctx, segment_id: str):
    params = ctx.query()
    stores = _stores(ctx)
    stores.segments.get(segment_id)
    scope = query_scope(f"segment-members:{segment_id}", {})
    entries, after = stores.segments.member_page(segment_id, params.limit,
                                                 decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [m.public() for m in cases.members(stores, entries)],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", ONE + "/members", summary="Add a client to a static segment (duplicates are skipped)",
     need="manager", tag="segments", body=s.MemberIn, response=s.MemberOut, status=201,
     also={200: "Already a member: the membership as it was, nothing changed."})
def add_member(ctx: Ctx, segment_id: str):
    member, added = cases.add_member(_stores(ctx), segment_id, ctx.body().client_id, actor=ctx.actor)
    return json_response(member.public(), 201 if added else 200)


@api(bp, "DELETE", ONE + "/members/{client_id}", summary="Remove a client from a static segment",
     need="manager", tag="segments", status=204)
def remove_member(ctx: Ctx, segment_id: str, client_id: str):
    cases.remove_member(_stores(ctx), segment_id, client_id)
    return Response(body="", status_code=204)


@api(bp, "GET", "/v1/clients/{client_id}/segments", summary="The segments a client belongs to", tag="segments",
     query=s.ListQuery, response=s.page_of(s.SegmentOut), list_response=True)
def client_segments(ctx: Ctx, client_id: str):
    params = ctx.query()
    stores = _stores(ctx)
    stores.clients.get(client_id)
    segments = sorted(stores.segments.get_many(stores.segments.segment_ids_of(client_id)),
                      key=lambda g: (g.name.casefold(), g.id))
    page, next_cursor = page_of_list(segments, lambda g: [g.name.casefold(), g.id], tenant_id=ctx.tenant_id,
                                     scope=query_scope(f"client-segments:{client_id}", {}), limit=params.limit,
                                     cursor=params.cursor)
    return {"items": [g.public() for g in page], "next_cursor": next_cursor}
