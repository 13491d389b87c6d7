"""Portal routes: a client's contact accepts the invitation and sees their own client's messages and documents."""
from __future__ import annotations

from datetime import UTC, datetime
from types import GenericAlias
from typing import Annotated

from chalice import Blueprint
from pydantic import StringConstraints, create_model

from chalicelib.domain import portal_cases
from chalicelib.domain.contacts import Contact
from chalicelib.domain.errors import Forbidden
from chalicelib.domain.portal import (
    PortalClient,
    PortalCommunication,
    PortalContact,
    PortalDocument,
    PortalLogEntry,
    PortalThread,
    Visitor,
)
from chalicelib.domain.values import iso
from chalicelib.handlers.fields import ListQuery, Model, Strict, Text, out_model, page_of
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.stores import Stores
from chalicelib.tokens import mint_portal_token

bp = Blueprint(__name__)
P = "/v1/portal"


ContactOut = out_model("PortalContact", PortalContact)
ClientOut = out_model("PortalClient", PortalClient)
MessageOut = out_model("PortalCommunication", PortalCommunication)
ThreadOut = out_model("PortalThread", PortalThread)
DocumentOut = out_model("PortalDocument", PortalDocument)


class AcceptIn(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class AcceptOut(Model):
    access_token: str
    token_type: str
    expires_at: datetime


MeOut = create_model("MeOut", __base__=Model, contact=(ContactOut, ...), client=(ClientOut, ...))


class MeUpdate(Strict):
    phone: Annotated[str, Text(50)] | None = None
    mobile: Annotated[str, Text(50)] | None = None
    job_title: Annotated[str, Text(100)] | None = None


# GenericAlias(list, ...) is list[MessageOut], spelt so mypy takes the model built at import as a value.
ThreadDetailOut = create_model("ThreadDetailOut", __base__=Model, thread=(ThreadOut, ...),
                               messages=(GenericAlias(list, (MessageOut,)), ...))


PortalLogOut = out_model("PortalLogOut", PortalLogEntry)


def _visitor(ctx: Ctx) -> Visitor:
    """The contact a portal token names (authorization let only portal tokens with a client through)."""
    principal = ctx.principal
    if principal is None or not principal.client_id:
        raise Forbidden("only portal users may call the portal")
    return Visitor(client_id=principal.client_id, contact_id=principal.sub)


def _pager(ctx: Ctx, name: str) -> portal_cases.Pager:
    """The page of one of the portal client's lists this request asks for, newest first."""
    params = ctx.query()
    scope = query_scope(f"portal-{name}", {"client": _visitor(ctx).client_id})
    return lambda items, position: page_of_list(items, position, tenant_id=ctx.tenant_id, scope=scope,
                                                limit=params.limit, cursor=params.cursor, descending=True)


def _page(items: list, next_cursor: str | None) -> dict:
    return {"items": [i.public() for i in items], "next_cursor": next_cursor}


def _profile(found: portal_cases.Profile) -> dict:
    contact, client = found
    return {"contact": contact.public(), "client": client.public()}


def _session_token(contact: Contact) -> dict:
    token, expires = mint_portal_token(contact.tenant_id, contact.client_id, contact.id)
    return {"access_token": token, "token_type": "Bearer", "expires_at": iso(datetime.fromtimestamp(expires, UTC))}


@api(bp, "POST", P + "/invitations/accept", summary="Accept a portal invitation: a portal session token",
     need="public", tag="portal", body=AcceptIn, response=AcceptOut)
def accept(ctx: Ctx):
    return portal_cases.sign_in(Stores, ctx.body().token, _session_token)


@api(bp, "GET", P + "/me", summary="The contact and its client", need="portal", tag="portal", response=MeOut)
def me(ctx: Ctx):
    return _profile(portal_cases.profile(ctx.stores(), _visitor(ctx)))


@api(bp, "PATCH", P + "/me", summary="Change the contact's phone, mobile or job title", need="portal", tag="portal",
     body=MeUpdate, response=MeOut)
def update_me(ctx: Ctx):
    return _profile(portal_cases.update_profile(ctx.stores(), _visitor(ctx), ctx.changes()))


@api(bp, "GET", P + "/communications", summary="The client's messages (never internal notes or drafts)",
     need="portal", tag="portal", query=ListQuery, response=page_of(MessageOut),
     list_response=True)
def communications(ctx: Ctx):
    return _page(*portal_cases.communications(ctx.stores(), _visitor(ctx), _pager(ctx, "communications")))


@api(bp, "GET", P + "/threads", summary="The client's conversation threads", need="portal", tag="portal",
     query=ListQuery, response=page_of(ThreadOut), list_response=True)
def threads(ctx: Ctx):
    return _page(*portal_cases.threads(ctx.stores(), _visitor(ctx), _pager(ctx, "threads")))


@api(bp, "GET", P + "/threads/{thread_id}", summary="A thread with its messages", need="portal", tag="portal",
     response=ThreadDetailOut)
def thread(ctx: Ctx, thread_id: str):
    found, messages = portal_cases.thread(ctx.stores(), _visitor(ctx), thread_id)
    return {"thread": found.public(), "messages": [m.public() for m in messages]}


@api(bp, "GET", P + "/quotes", summary="The client's quotes", need="portal", tag="portal",
     query=ListQuery, response=page_of(DocumentOut), list_response=True)
def quotes(ctx: Ctx):
    return _page(*portal_cases.quotes(ctx.stores(), _visitor(ctx), _pager(ctx, "quotes")))


@api(bp, "GET", P + "/invoices", summary="The client's invoices and credit notes", need="portal", tag="portal",
     query=ListQuery, response=page_of(DocumentOut), list_response=True)
def invoices(ctx: Ctx):
    return _page(*portal_cases.invoices(ctx.stores(), _visitor(ctx), _pager(ctx, "invoices")))


@api(bp, "POST", P + "/quotes/{quote_id}/approve", summary="Approve an open quote", need="portal", tag="portal",
     response=DocumentOut)
def approve_quote(ctx: Ctx, quote_id: str):
    return portal_cases.approve_quote(ctx.stores(), _visitor(ctx), quote_id).public()


@api(bp, "GET", "/v1/clients/{client_id}/portal-activity", summary="Portal sign-ins, views and approvals",
     tag="portal", query=ListQuery, response=page_of(PortalLogOut), list_response=True)
def portal_activity(ctx: Ctx, client_id: str):
    params = ctx.query()
    scope = query_scope(f"portal-activity:{client_id}", {})
    entries, after = portal_cases.activity(ctx.stores(), client_id, params.limit,
                                           decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [e.public() for e in entries],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}
