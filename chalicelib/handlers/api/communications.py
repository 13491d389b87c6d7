"""Communication routes: a client's communications and threads, sending drafts, follow-ups, and unmatched mail."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

from chalice import Blueprint, Response
from pydantic import AfterValidator, Field, field_validator

from chalicelib.blobs import InboundMail
from chalicelib.domain import communication_cases, inbound_cases, thread_cases
from chalicelib.domain.communications import CommType, Communication, Direction, Status, UnmatchedEmail, day_range
from chalicelib.domain.threads import Thread, latest_activity
from chalicelib.handlers.fields import (
    HHMM,
    Date,
    Email,
    Id,
    ListQuery,
    Strict,
    Text,
    Timestamp,
    comma_list,
    nullable,
    out_model,
    page_of,
    patch_of,
    since_epoch,
)
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)
BASE = "/v1/clients/{client_id}/communications"
ONE = BASE + "/{comm_id}"
THREADS = "/v1/clients/{client_id}/threads"
EMAIL_LIMITED = ("`rate_limited`: the tenant sent EMAILS_PER_TENANT_PER_MINUTE emails this minute; nothing was sent "
                 "or stored. `Retry-After` says when (seconds).")


# --- request and response models -----------------------------------------------------------------------------------
class CommunicationFields(Strict):
    direction: Direction | None = None
    subject: Annotated[str, Text(255)] | None = None
    body: Annotated[str, Text(100_000)] | None = None
    from_email: Email | None = None
    to_email: Email | None = None
    cc: Annotated[list[Email], Field(max_length=50)] | None = None
    bcc: Annotated[list[Email], Field(max_length=50)] | None = None
    integration_id: Annotated[str, Text(100)] | None = None
    from_phone: Annotated[str, Text(50)] | None = None
    to_phone: Annotated[str, Text(50)] | None = None
    duration_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None
    outcome: Annotated[str, Text(100)] | None = None
    requires_followup: bool | None = None
    followup_date: Date | None = None
    followup_notes: Annotated[str, Text(2000)] | None = None
    meeting_date: Date | None = None
    start_time: HHMM | None = None
    end_time: HHMM | None = None
    location_type: Literal["in_person", "video", "phone"] | None = None
    location: Annotated[str, Text(255)] | None = None
    attendees: Annotated[list[Annotated[str, Text(200, 1)]], Field(max_length=100)] | None = None
    action_items: Annotated[list[Annotated[str, Text(500, 1)]], Field(max_length=100)] | None = None
    project_id: Id | None = None
    client_contact_id: Id | None = None
    thread_id: Id | None = None


class CommunicationCreate(CommunicationFields):
    type: CommType
    send_now: bool = True
    occurred_at: Annotated[Timestamp, AfterValidator(since_epoch)] | None = None  # its ULID id starts in 1970


class CommunicationChange(CommunicationFields):
    status: Status | None = None


# Null clears what a communication may hold empty; the rest (direction, lists, flags, status) refuse it.
CommunicationUpdate = patch_of("CommunicationUpdate", CommunicationChange, not_null=tuple(
    n for n, f in Communication.model_fields.items()
    if n in CommunicationChange.model_fields and not nullable(f.annotation)))

CommunicationOut = out_model("Communication", Communication)


class CommunicationListQuery(ListQuery):
    type: list[CommType] | None = Field(None, description="comma list")
    contact_id: Id | None = None
    project_id: Id | None = None
    thread_id: Id | None = None
    from_: Date | None = Field(None, alias="from")
    to: Date | None = None
    q: Annotated[str, Text(200)] | None = None

    _type = field_validator("type", mode="before")(comma_list(get_args(CommType)))


class FollowUpQuery(ListQuery):
    due_before: Date | None = None


class ThreadCreate(Strict):
    subject: Annotated[str, Text(255, 1)]
    type: Literal["general", "email", "sms", "chat", "meeting"] = "general"


class ThreadUpdate(Strict):
    subject: Annotated[str, Text(255, 1)] | None = None
    status: Literal["active", "archived"] | None = None


ThreadOut = out_model("Thread", Thread, icon=(str, ...))


UnmatchedOut = out_model("UnmatchedOut", UnmatchedEmail)


class AssignIn(Strict):
    client_id: Id


# --- adapters the use cases are given ------------------------------------------------------------------------------
def _send(**fields) -> str:
    from chalicelib.mail import OutgoingEmail, send

    return send(OutgoingEmail(**fields)).message_id


# --- communications -------------------------------------------------------------------------------------------------
@api(bp, "GET", BASE, summary="List a client's communications, newest first", tag="communications",
     query=CommunicationListQuery, response=page_of(CommunicationOut), list_response=True)
def list_communications(ctx: Ctx, client_id: str):
    params = ctx.query()
    low, high = day_range(params.from_, params.to)
    filters = {"type": params.type, "contact_id": params.contact_id, "project_id": params.project_id,
               "thread_id": params.thread_id, "from": low, "to": high, "q": params.q}
    scope = query_scope(f"communications:{client_id}", filters)
    items, after = communication_cases.list_communications(ctx.stores(), client_id, filters, params.limit,
                                                           decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [c.public() for c in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", BASE, summary="Log (and for email, send) a communication", need="agent",
     tag="communications", body=CommunicationCreate, response=CommunicationOut, status=201, idempotent=True,
     also={429: EMAIL_LIMITED})
def log_communication(ctx: Ctx, client_id: str):
    data = ctx.body().model_dump(exclude_none=True)
    return communication_cases.log_communication(ctx.stores(), client_id, data, actor=ctx.actor,
                                                 send=_send).public()


@api(bp, "GET", ONE, summary="Get a communication", tag="communications", response=CommunicationOut)
def get_communication(ctx: Ctx, client_id: str, comm_id: str):
    return communication_cases.get_communication(ctx.stores(), client_id, comm_id).public()


@api(bp, "PATCH", ONE, summary="Edit a communication or move its status forward", need="agent",
     tag="communications", body=CommunicationUpdate, response=CommunicationOut)
def update_communication(ctx: Ctx, client_id: str, comm_id: str):
    return communication_cases.update_communication(ctx.stores(), client_id, comm_id, ctx.changes()).public()


@api(bp, "DELETE", ONE, summary="Delete (soft) a communication", need="agent", tag="communications", status=204)
def delete_communication(ctx: Ctx, client_id: str, comm_id: str):
    communication_cases.delete_communication(ctx.stores(), client_id, comm_id)
    return Response(body="", status_code=204)


@api(bp, "POST", ONE + "/send", summary="Send an email draft", need="agent", tag="communications",
     response=CommunicationOut, also={429: EMAIL_LIMITED})
def send_draft(ctx: Ctx, client_id: str, comm_id: str):
    return communication_cases.send_draft(ctx.stores(), client_id, comm_id, _send).public()


@api(bp, "GET", "/v1/follow-ups", summary="Communications that need a follow-up, across the tenant",
     tag="communications", query=FollowUpQuery, response=page_of(CommunicationOut), list_response=True)
def follow_ups(ctx: Ctx):
    params = ctx.query()
    due = params.due_before.isoformat() if params.due_before else None
    scope = query_scope("follow-ups", {"due_before": due})
    items, after = communication_cases.follow_ups(ctx.stores(), due, params.limit,
                                                  decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [c.public() for c in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


# --- threads --------------------------------------------------------------------------------------------------------
@api(bp, "GET", THREADS, summary="List a client's threads, latest activity first", tag="communications",
     query=ListQuery, response=page_of(ThreadOut), list_response=True)
def list_threads(ctx: Ctx, client_id: str):
    params = ctx.query()
    threads = thread_cases.list_threads(ctx.stores(), client_id)
    page, next_cursor = page_of_list(threads, latest_activity, tenant_id=ctx.tenant_id, limit=params.limit,
                                     scope=query_scope(f"threads:{client_id}", {}), cursor=params.cursor,
                                     descending=True)
    return {"items": [t.public() for t in page], "next_cursor": next_cursor}


@api(bp, "POST", THREADS, summary="Start a thread", need="agent", tag="communications", body=ThreadCreate,
     response=ThreadOut, status=201, idempotent=True)
def create_thread(ctx: Ctx, client_id: str):
    body = ctx.body()
    name = ctx.principal.name if ctx.principal else None
    return thread_cases.start_thread(ctx.stores(), client_id, body.subject, body.type, name).public()


@api(bp, "GET", THREADS + "/{thread_id}", summary="A thread with its messages, oldest first",
     tag="communications", response=ThreadOut)
def get_thread(ctx: Ctx, client_id: str, thread_id: str):
    thread, messages = thread_cases.get_thread(ctx.stores(), client_id, thread_id)
    return {**thread.public(), "messages": [m.public() for m in messages]}


@api(bp, "PATCH", THREADS + "/{thread_id}", summary="Rename or archive a thread", need="agent",
     tag="communications", body=ThreadUpdate, response=ThreadOut)
def update_thread(ctx: Ctx, client_id: str, thread_id: str):
    return thread_cases.update_thread(ctx.stores(), client_id, thread_id, ctx.changes()).public()


# --- inbound mail from unknown senders ------------------------------------------------------------------------------
@api(bp, "GET", "/v1/inbox/unmatched", summary="Inbound emails from unknown senders, newest first",
     tag="communications", query=ListQuery, response=page_of(UnmatchedOut), list_response=True)
def unmatched(ctx: Ctx):
    params = ctx.query()
    scope = query_scope("inbox-unmatched", {})
    items, after = inbound_cases.unmatched(ctx.stores(), params.limit,
                                           decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [i.model_dump(mode="json") for i in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", "/v1/inbox/unmatched/{item_id}/assign", summary="Log an unmatched email on a client",
     need="agent", tag="communications", body=AssignIn, response=CommunicationOut)
def assign_unmatched(ctx: Ctx, item_id: str):
    return inbound_cases.assign_unmatched(ctx.stores(), InboundMail(), item_id, ctx.body().client_id).public()
