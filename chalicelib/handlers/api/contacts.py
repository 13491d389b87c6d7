"""Contact routes: a client's contacts, flags, deletion, portal access, and the tenant-wide search."""
from __future__ import annotations

from typing import Annotated, Literal

from chalice import Blueprint, Response
from pydantic import Field

from chalicelib.domain import contact_cases
from chalicelib.domain.contacts import NOT_NULL, Contact
from chalicelib.handlers.fields import (
    Email,
    ListQuery,
    Query,
    Strict,
    Text,
    if_match_version,
    out_model,
    page_of,
    patch_of,
)
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)
BASE = "/v1/clients/{client_id}/contacts"
ONE = BASE + "/{contact_id}"
INVITATION_LIMITED = ("`rate_limited`: the contact had INVITATIONS_PER_CONTACT_PER_DAY invitations today (UTC), or the "
                      "tenant sent EMAILS_PER_TENANT_PER_MINUTE emails this minute; nothing was sent or changed. "
                      "`Retry-After` says when (seconds).")


class ContactCreate(Strict):
    full_name: Annotated[str, Text(200, 1)]
    first_name: Annotated[str, Text(100)] | None = None
    last_name: Annotated[str, Text(100)] | None = None
    email: Email
    phone: Annotated[str, Text(50)] | None = None
    mobile: Annotated[str, Text(50)] | None = None
    job_title: Annotated[str, Text(100)] | None = None
    position: Annotated[str, Text(100)] | None = None
    department: Annotated[str, Text(100)] | None = None
    notes: Annotated[str, Text(5000)] | None = None
    is_primary: bool = False
    is_billing_contact: bool = False
    is_technical_contact: bool = False


ContactUpdate = patch_of("ContactUpdate", ContactCreate, not_null=NOT_NULL)

ContactOut = out_model(
    "Contact", Contact,
    badges=(list[Literal["primary", "node_user", "portal", "billing", "technical"]], ...),
)


class ContactListQuery(ListQuery):
    q: Annotated[str, Text(200)] | None = None


class PortalAccessIn(Strict):
    enabled: bool


def _send_invitation(contact: Contact, secret: str, sending_address: str | None) -> None:
    from chalicelib.invitations import send_portal_invitation  # the mail sender loads at first use

    send_portal_invitation(contact, secret, sending_address)


def _page(ctx: Ctx, scope: str, contacts: list[Contact], after: dict | None) -> dict:
    return {"items": [c.public() for c in contacts],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "GET", BASE, summary="List a client's contacts", tag="contacts", query=ContactListQuery,
     response=page_of(ContactOut), list_response=True)
def list_contacts(ctx: Ctx, client_id: str):
    params = ctx.query()
    scope = query_scope(f"contacts:{client_id}", {"q": params.q})
    contacts, after = contact_cases.list_contacts(ctx.stores(), client_id, params.q, params.limit,
                                                  decode_cursor(params.cursor, ctx.tenant_id, scope))
    return _page(ctx, scope, contacts, after)


@api(bp, "GET", "/v1/contacts", summary="Search contacts across the tenant", tag="contacts",
     query=ContactListQuery, response=page_of(ContactOut), list_response=True)
def search_contacts(ctx: Ctx):
    params = ctx.query()
    scope = query_scope("contacts:None", {"q": params.q})  # the scope its cursors have always been bound to
    contacts, after = contact_cases.search_contacts(ctx.stores(), params.q, params.limit,
                                                    decode_cursor(params.cursor, ctx.tenant_id, scope))
    return _page(ctx, scope, contacts, after)


class AddQuery(Query):
    allow_duplicate: bool = Field(False, description="add it even when contacts have its email address")


@api(bp, "POST", BASE, summary="Add a contact; 409 `possible_duplicate` when live contacts of the tenant have its "
     "email address, unless `?allow_duplicate=true`", need="agent", tag="contacts", body=ContactCreate,
     query=AddQuery, response=ContactOut, status=201, idempotent=True,
     also={409: "`possible_duplicate`: each detail names a contact with this address (`client_id`, `contact_id`, "
               "`same_client`, `reasons`: same_email)"})
def add_contact(ctx: Ctx, client_id: str):
    data = ctx.body().model_dump(exclude_none=True)
    return contact_cases.add_contact(ctx.stores(), client_id, data,
                                     allow_duplicate=ctx.query().allow_duplicate).public()


@api(bp, "GET", ONE, summary="Get a contact", tag="contacts", response=ContactOut)
def get_contact(ctx: Ctx, client_id: str, contact_id: str):
    return contact_cases.get_contact(ctx.stores(), client_id, contact_id).public()


@api(bp, "PATCH", ONE, summary="Update the named fields of a contact", need="agent", tag="contacts",
     body=ContactUpdate, response=ContactOut)
def update_contact(ctx: Ctx, client_id: str, contact_id: str):
    changes = ctx.changes()
    return contact_cases.update_contact(ctx.stores(), client_id, contact_id, changes,
                                        if_match_version(ctx.header("if-match"))).public()


@api(bp, "DELETE", ONE, summary="Delete (soft) a contact", need="agent", tag="contacts", status=204)
def delete_contact(ctx: Ctx, client_id: str, contact_id: str):
    contact_cases.delete_contact(ctx.stores(), client_id, contact_id)
    return Response(body="", status_code=204)


@api(bp, "POST", ONE + "/make-primary", summary="Make this the client's primary contact", need="agent",
     tag="contacts", response=ContactOut)
def make_primary(ctx: Ctx, client_id: str, contact_id: str):
    return contact_cases.make_primary(ctx.stores(), client_id, contact_id).public()


@api(bp, "PUT", ONE + "/portal-access", summary="Turn portal access on or off", need="agent", tag="contacts",
     body=PortalAccessIn, response=ContactOut, also={429: INVITATION_LIMITED})
def portal_access(ctx: Ctx, client_id: str, contact_id: str):
    enabled = ctx.body().enabled
    return contact_cases.set_portal_access(ctx.stores(), client_id, contact_id, enabled, _send_invitation).public()


@api(bp, "POST", ONE + "/portal-invitation", summary="Resend the portal invitation", need="agent",
     tag="contacts", response=ContactOut, also={429: INVITATION_LIMITED})
def resend_invitation(ctx: Ctx, client_id: str, contact_id: str):
    return contact_cases.resend_invitation(ctx.stores(), client_id, contact_id, _send_invitation).public()
