"""Portal routes: a client's contact accepts the invitation and sees their own client's messages and documents."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from chalice import Blueprint
from pydantic import BaseModel, StringConstraints

from chalicelib.domain import contact_cases
from chalicelib.domain import portal as dp
from chalicelib.domain.contacts import parse_invitation_token
from chalicelib.domain.errors import NotFound, Unauthorized
from chalicelib.domain.values import iso, utcnow
from chalicelib.handlers.fields import ListQuery, Strict, Text, out_model, page_of
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.portal import PortalRepository
from chalicelib.tables.stores import Stores
from chalicelib.tokens import mint_portal_token

bp = Blueprint(__name__)
P = "/v1/portal"


ContactOut = out_model("PortalContact", dp.PortalContact)
ClientOut = out_model("PortalClient", dp.PortalClient)
MessageOut = out_model("PortalCommunication", dp.PortalCommunication)
ThreadOut = out_model("PortalThread", dp.PortalThread)
DocumentOut = out_model("PortalDocument", dp.PortalDocument)


class AcceptIn(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class AcceptOut(BaseModel):
    access_token: str
    token_type: str
    expires_at: datetime


class MeOut(BaseModel):
    contact: ContactOut
    client: ClientOut


class MeUpdate(Strict):
    phone: Annotated[str, Text(50)] | None = None
    mobile: Annotated[str, Text(50)] | None = None
    job_title: Annotated[str, Text(100)] | None = None


class ThreadDetailOut(BaseModel):
    thread: ThreadOut
    messages: list[MessageOut]


class PortalLogOut(BaseModel):
    id: str
    at: datetime
    contact_id: str
    contact_name: str | None
    action: str
    detail: dict[str, Any] | None


class Session:
    """A portal request whose contact was checked just now: it exists, has access, and the portal is on."""

    def __init__(self, ctx: Ctx):
        self.stores = ctx.stores()
        p = ctx.principal
        settings = self.stores.settings.get("portal")
        try:
            contact = self.stores.contacts.get(p.client_id, p.sub, include_deleted=True)
        except NotFound:
            contact = None
        self.contact = dp.check_session(contact, settings, p.client_id)
        self.settings = settings
        self.client_id = p.client_id

    def log(self, action: str, detail: dict[str, Any] | None = None) -> None:
        PortalRepository(self.stores.tenant_id).log(self.client_id, self.contact.id, self.contact.full_name, action,
                                                     detail, utcnow())

    def records(self):
        return self.stores.facts.client_records(self.client_id)


@api(bp, "POST", P + "/invitations/accept", summary="Accept a portal invitation: a portal session token",
     need="public", tag="portal", body=AcceptIn, response=AcceptOut)
def accept(ctx: Ctx):
    parsed = parse_invitation_token(ctx.body().token)
    if parsed is None:
        raise Unauthorized("the invitation is unknown, used, voided or expired")
    tenant_id, client_id, contact_id, secret = parsed
    stores = Stores(tenant_id)
    contact = contact_cases.accept_invitation(stores, client_id, contact_id, secret)
    token, expires = mint_portal_token(tenant_id, client_id, contact_id)
    PortalRepository(tenant_id).log(client_id, contact.id, contact.full_name, "sign_in", None, utcnow())
    return {"access_token": token, "token_type": "Bearer",
            "expires_at": iso(datetime.fromtimestamp(expires, UTC))}


@api(bp, "GET", P + "/me", summary="The contact and its client", need="portal", tag="portal", response=MeOut)
def me(ctx: Ctx):
    session = Session(ctx)
    client = session.stores.clients.get(session.client_id)
    session.log("view_profile")
    return {"contact": dp.contact_view(session.contact), "client": dp.client_view(client)}


@api(bp, "PATCH", P + "/me", summary="Change the contact's phone, mobile or job title", need="portal", tag="portal",
     body=MeUpdate, response=MeOut)
def update_me(ctx: Ctx):
    session = Session(ctx)
    body = ctx.body()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    contact = contact_cases.update_contact(session.stores, session.client_id, session.contact.id, changes, None)
    session.log("update_profile", {"fields": sorted(changes)})
    client = session.stores.clients.get(session.client_id)
    return {"contact": dp.contact_view(contact), "client": dp.client_view(client)}


@api(bp, "GET", P + "/communications", summary="The client's messages (never internal notes or drafts)",
     need="portal", tag="portal", query=ListQuery, response=page_of(MessageOut),
     list_response=True)
def communications(ctx: Ctx):
    params = ctx.query()
    session = Session(ctx)
    dp.shown(session.settings, "show_communications", "communications")
    comms = sorted((c for c in session.records().communications if dp.visible(c)),
                   key=lambda c: (c.occurred_at, c.id), reverse=True)
    page, next_cursor = page_of_list(comms, lambda c: [iso(c.occurred_at), c.id], tenant_id=ctx.tenant_id,
                                     scope=query_scope("portal-communications", {"client": session.client_id}),
                                     limit=params.limit, cursor=params.cursor, descending=True)
    session.log("view_communications")
    return {"items": [dp.communication_view(c) for c in page], "next_cursor": next_cursor}


def _page(params: Any, session: Session, name: str, items: list, position) -> tuple[list, str | None]:
    """A page of one of the portal client's lists, already in newest-first order of `position`."""
    return page_of_list(items, position, tenant_id=session.stores.tenant_id, limit=params.limit,
                        cursor=params.cursor, scope=query_scope(f"portal-{name}", {"client": session.client_id}),
                        descending=True)


@api(bp, "GET", P + "/threads", summary="The client's conversation threads", need="portal", tag="portal",
     query=ListQuery, response=page_of(ThreadOut), list_response=True)
def threads(ctx: Ctx):
    params = ctx.query()
    session = Session(ctx)
    dp.shown(session.settings, "show_communications", "communications")
    records = session.records()
    page, next_cursor = _page(params, session, "threads", sorted(records.threads, key=dp.thread_order, reverse=True),
                              dp.thread_order)
    session.log("view_threads")
    return {"items": dp.thread_views(page, records.communications), "next_cursor": next_cursor}


@api(bp, "GET", P + "/threads/{thread_id}", summary="A thread with its messages", need="portal", tag="portal",
     response=ThreadDetailOut)
def thread(ctx: Ctx, thread_id: str):
    session = Session(ctx)
    dp.shown(session.settings, "show_communications", "communications")
    records = session.records()
    found = [t for t in records.threads if t.id == thread_id]
    if not found:
        raise NotFound(f"thread {thread_id} not found")
    messages = sorted((c for c in records.communications if c.thread_id == thread_id and dp.visible(c)),
                      key=lambda c: (c.occurred_at, c.id))
    session.log("view_thread", {"thread_id": thread_id})
    return {"thread": dp.thread_views(found, records.communications)[0],
            "messages": [dp.communication_view(c) for c in messages]}


def _documents(params: Any, session: Session, name: str, kinds: tuple[str, ...]) -> dict:
    page, next_cursor = _page(params, session, name, dp.issued(session.records().invoices, kinds), dp.issued_order)
    session.log(f"view_{name}")
    return {"items": dp.documents(page, kinds), "next_cursor": next_cursor}


@api(bp, "GET", P + "/quotes", summary="The client's quotes", need="portal", tag="portal",
     query=ListQuery, response=page_of(DocumentOut), list_response=True)
def quotes(ctx: Ctx):
    params = ctx.query()
    return _documents(params, Session(ctx), "quotes", ("quote",))


@api(bp, "GET", P + "/invoices", summary="The client's invoices and credit notes", need="portal", tag="portal",
     query=ListQuery, response=page_of(DocumentOut), list_response=True)
def invoices(ctx: Ctx):
    params = ctx.query()
    session = Session(ctx)
    dp.shown(session.settings, "show_invoices", "invoices")
    return _documents(params, session, "invoices", ("invoice", "credit_note"))


@api(bp, "POST", P + "/quotes/{quote_id}/approve", summary="Approve an open quote", need="portal", tag="portal",
     response=DocumentOut)
def approve_quote(ctx: Ctx, quote_id: str):
    session = Session(ctx)
    approved = dp.approve(session.stores.facts.invoice(quote_id), session.settings, session.contact, utcnow())
    PortalRepository(session.stores.tenant_id).approve(approved)
    session.log("approve_quote", {"quote_id": quote_id, "amount": str(approved.amount)})
    return dp.documents([approved], ("quote",))[0]


@api(bp, "GET", "/v1/clients/{client_id}/portal-activity", summary="Portal sign-ins, views and approvals",
     tag="portal", query=ListQuery, response=page_of(PortalLogOut), list_response=True)
def portal_activity(ctx: Ctx, client_id: str):
    params = ctx.query()
    ctx.stores().clients.get(client_id)
    scope = query_scope(f"portal-activity:{client_id}", {})
    items, after = PortalRepository(ctx.tenant_id).page(client_id, params.limit,
                                                        decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [{"id": i.id, "at": iso(i.at), "contact_id": i.contact_id, "contact_name": i.contact_name,
                       "action": i.action, "detail": i.detail} for i in items],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}

