"""Communication routes: log and list a client's communications, send drafts, and tenant follow-ups."""
from __future__ import annotations

from chalice import Blueprint, Response
from ulid import ULID

from chalicelib.domain import communication_cases as cases
from chalicelib.domain import inbound_cases as inbound
from chalicelib.domain.threads import Thread
from chalicelib.domain.values import iso, utcnow
from chalicelib.handlers import schemas as s
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.communications import CommunicationRepository
from chalicelib.tables.inbox import InboxRepository
from chalicelib.tables.stores import Stores
from chalicelib.tables.threads import ThreadRepository

bp = Blueprint(__name__)
BASE = "/v1/clients/{client_id}/communications"
ONE = BASE + "/{comm_id}"
EMAIL_LIMITED = ("`rate_limited`: the tenant sent EMAILS_PER_TENANT_PER_MINUTE emails this minute; nothing was sent "
                 "or stored. `Retry-After` says when (seconds).")


def _stores(ctx: Ctx) -> Stores:
    return ctx.stores()


def _send(**fields) -> str:
    from chalicelib.mail import OutgoingEmail, send

    return send(OutgoingEmail(**fields)).message_id


@api(bp, "GET", BASE, summary="List a client's communications, newest first", tag="communications",
     query=s.CommunicationListQuery, response=s.page_of(s.CommunicationOut), list_response=True)
def list_communications(ctx: Ctx, client_id: str):
    params = ctx.query()
    ClientRepository(ctx.tenant_id, ctx.actor).get(client_id)
    low, high = cases.day_range(params.from_, params.to)
    if low and high and low > high:  # `from` after `to`: no day is in both (and DynamoDB refuses such a range)
        return {"items": [], "next_cursor": None}
    filters = {"type": params.type, "contact_id": params.contact_id, "project_id": params.project_id,
               "thread_id": params.thread_id, "from": low, "to": high, "q": params.q}
    scope = query_scope(f"communications:{client_id}", filters)
    items, after = CommunicationRepository(ctx.tenant_id).page(
        client_id, filters, params.limit, decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [c.public() for c in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", BASE, summary="Log (and for email, send) a communication", need="agent",
     tag="communications", body=s.CommunicationCreate, response=s.CommunicationOut, status=201, idempotent=True,
     also={429: EMAIL_LIMITED})
def log_communication(ctx: Ctx, client_id: str):
    data = ctx.body().model_dump(exclude_none=True)
    return cases.log_communication(_stores(ctx), client_id, data, actor=ctx.actor, send=_send).public()


@api(bp, "GET", ONE, summary="Get a communication", tag="communications", response=s.CommunicationOut)
def get_communication(ctx: Ctx, client_id: str, comm_id: str):
    return CommunicationRepository(ctx.tenant_id).get(client_id, comm_id).public()


@api(bp, "PATCH", ONE, summary="Edit a communication or move its status forward", need="agent",
     tag="communications", body=s.CommunicationUpdate, response=s.CommunicationOut)
def update_communication(ctx: Ctx, client_id: str, comm_id: str):
    body = ctx.body()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return cases.update_communication(_stores(ctx), client_id, comm_id, changes).public()


@api(bp, "DELETE", ONE, summary="Delete (soft) a communication", need="agent", tag="communications", status=204)
def delete_communication(ctx: Ctx, client_id: str, comm_id: str):
    cases.delete_communication(_stores(ctx), client_id, comm_id)
    return Response(body="", status_code=204)


@api(bp, "POST", ONE + "/send", summary="Send an email draft", need="agent", tag="communications",
     response=s.CommunicationOut, also={429: EMAIL_LIMITED})
def send_draft(ctx: Ctx, client_id: str, comm_id: str):
    return cases.send_draft(_stores(ctx), client_id, comm_id, _send).public()


@api(bp, "GET", "/v1/follow-ups", summary="Communications that need a follow-up, across the tenant",
     tag="communications", query=s.FollowUpQuery, response=s.page_of(s.CommunicationOut), list_response=True)
def follow_ups(ctx: Ctx):
    params = ctx.query()
    due = params.due_before.isoformat() if params.due_before else None
    scope = query_scope("follow-ups", {"due_before": due})
    items, after = CommunicationRepository(ctx.tenant_id).followups(
        due, params.limit, decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [c.public() for c in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


THREADS = "/v1/clients/{client_id}/threads"


def _activity(thread: Thread) -> list[str]:
    return [iso(thread.last_activity_at or thread.created_at), thread.id]


@api(bp, "GET", THREADS, summary="List a client's threads, latest activity first", tag="communications",
     query=s.ListQuery, response=s.page_of(s.ThreadOut), list_response=True)
def list_threads(ctx: Ctx, client_id: str):
    params = ctx.query()
    ClientRepository(ctx.tenant_id, ctx.actor).get(client_id)
    threads = sorted(ThreadRepository(ctx.tenant_id).of_client(client_id), key=_activity, reverse=True)
    page, next_cursor = page_of_list(threads, _activity, tenant_id=ctx.tenant_id, limit=params.limit,
                                     scope=query_scope(f"threads:{client_id}", {}), cursor=params.cursor,
                                     descending=True)
    return {"items": [t.public() for t in page], "next_cursor": next_cursor}


@api(bp, "POST", THREADS, summary="Start a thread", need="agent", tag="communications", body=s.ThreadCreate,
     response=s.ThreadOut, status=201, idempotent=True)
def create_thread(ctx: Ctx, client_id: str):
    ClientRepository(ctx.tenant_id, ctx.actor).get(client_id)
    body = ctx.body()
    now = utcnow()
    name = ctx.principal.name if ctx.principal else None
    thread = Thread(id=str(ULID.from_datetime(now)), tenant_id=ctx.tenant_id, client_id=client_id,
                    subject=body.subject, type=body.type, created_by=ctx.actor, created_by_name=name,
                    created_at=now, updated_at=now)
    return ThreadRepository(ctx.tenant_id).add(thread).public()


@api(bp, "GET", THREADS + "/{thread_id}", summary="A thread with its messages, oldest first",
     tag="communications", response=s.ThreadOut)
def get_thread(ctx: Ctx, client_id: str, thread_id: str):
    thread = ThreadRepository(ctx.tenant_id).get(client_id, thread_id)
    messages, _ = CommunicationRepository(ctx.tenant_id).page(client_id, {"thread_id": thread_id}, 1000, None)
    return {**thread.public(), "messages": [m.public() for m in reversed(messages)]}


@api(bp, "PATCH", THREADS + "/{thread_id}", summary="Rename or archive a thread", need="agent",
     tag="communications", body=s.ThreadUpdate, response=s.ThreadOut)
def update_thread(ctx: Ctx, client_id: str, thread_id: str):
    body = ctx.body()
    repo = ThreadRepository(ctx.tenant_id)
    thread = repo.get(client_id, thread_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set if getattr(body, name) is not None}
    return repo.put(thread.model_copy(update={**changes, "updated_at": utcnow()})).public()


@api(bp, "GET", "/v1/inbox/unmatched", summary="Inbound emails from unknown senders, newest first",
     tag="communications", query=s.ListQuery, response=s.page_of(s.UnmatchedOut), list_response=True)
def unmatched(ctx: Ctx):
    params = ctx.query()
    scope = query_scope("inbox-unmatched", {})
    items, after = InboxRepository(ctx.tenant_id).unmatched(params.limit,
                                                             decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [s.UnmatchedOut.model_validate(i, from_attributes=True).model_dump(mode="json") for i in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "POST", "/v1/inbox/unmatched/{item_id}/assign", summary="Log an unmatched email on a client",
     need="agent", tag="communications", body=s.AssignIn, response=s.CommunicationOut)
def assign_unmatched(ctx: Ctx, item_id: str):
    from chalicelib import blobs
    from chalicelib.handlers.events import _attachment_store
    from chalicelib.inbound_mime import parse_email

    client_id = ctx.body().client_id
    stores = _stores(ctx)
    stores.clients.get(client_id)
    item = stores.inbox.get_unmatched(item_id)
    parsed = parse_email(blobs.get_object(item.bucket, item.key))
    comm = inbound.log_inbound(stores, client_id, None, parsed, item.to_email, _attachment_store)
    stores.inbox.remove_unmatched(item)
    if comm is None:  # its Message-ID was logged meanwhile: answer that communication
        known = stores.inbox.find_message(parsed.message_id)
        comm = stores.communications.get(known.client_id, known.communication_id)
    return comm.public()
