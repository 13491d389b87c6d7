"""Contact routes: a client's contacts, flags, deletion, portal access, and the tenant-wide search."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.domain import contact_cases as cases
from chalicelib.handlers import schemas as s
from chalicelib.handlers.api.clients import _expected_version
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.contacts import ContactRepository
from chalicelib.tables.stores import Stores

bp = Blueprint(__name__)
BASE = "/v1/clients/{client_id}/contacts"
ONE = BASE + "/{contact_id}"
INVITATION_LIMITED = ("`rate_limited`: the contact had INVITATIONS_PER_CONTACT_PER_DAY invitations today (UTC), or the "
                      "tenant sent EMAILS_PER_TENANT_PER_MINUTE emails this minute; nothing was sent or changed. "
                      "`Retry-After` says when (seconds).")


def _stores(ctx: Ctx) -> Stores:
    return ctx.stores()


def _send_invitation(contact, secret):
    from chalicelib.invitations import send_portal_invitation

    send_portal_invitation(contact, secret)


def _page(ctx: Ctx, client_id: str | None):
    params = ctx.query()
    scope = query_scope(f"contacts:{client_id}", {"q": params.q})
    contacts, after = ContactRepository(ctx.tenant_id, ctx.actor).page(
        client_id, params.q, params.limit, decode_cursor(params.cursor, ctx.tenant_id, scope))
    return {"items": [c.public() for c in contacts],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, after) if after else None}


@api(bp, "GET", BASE, summary="List a client's contacts", tag="contacts", query=s.ContactListQuery,
     response=s.page_of(s.ContactOut), list_response=True)
def list_contacts(ctx: Ctx, client_id: str):
    ClientRepository(ctx.tenant_id, ctx.actor).get(client_id)  # 404 for another tenant's client
    return _page(ctx, client_id)


@api(bp, "GET", "/v1/contacts", summary="Search contacts across the tenant", tag="contacts",
     query=s.ContactListQuery, response=s.page_of(s.ContactOut), list_response=True)
def search_contacts(ctx: Ctx):
    return _page(ctx, None)


@api(bp, "POST", BASE, summary="Add a contact", need="agent", tag="contacts", body=s.ContactCreate,
     response=s.ContactOut, status=201, idempotent=True)
def add_contact(ctx: Ctx, client_id: str):
    data = ctx.body().model_dump(exclude_none=True)
    return cases.add_contact(_stores(ctx), client_id, data).public()


@api(bp, "GET", ONE, summary="Get a contact", tag="contacts", response=s.ContactOut)
def get_contact(ctx: Ctx, client_id: str, contact_id: str):
    return ContactRepository(ctx.tenant_id, ctx.actor).get(client_id, contact_id).public()


@api(bp, "PATCH", ONE, summary="Update the named fields of a contact", need="agent", tag="contacts",
     body=s.ContactUpdate, response=s.ContactOut)
def update_contact(ctx: Ctx, client_id: str, contact_id: str):
    body = ctx.body()
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return cases.update_contact(_stores(ctx), client_id, contact_id, changes, _expected_version(ctx)).public()


@api(bp, "DELETE", ONE, summary="Delete (soft) a contact", need="agent", tag="contacts", status=204)
def delete_contact(ctx: Ctx, client_id: str, contact_id: str):
    cases.delete_contact(_stores(ctx), client_id, contact_id)
    return Response(body="", status_code=204)


@api(bp, "POST", ONE + "/make-primary", summary="Make this the client's primary contact", need="agent",
     tag="contacts", response=s.ContactOut)
def make_primary(ctx: Ctx, client_id: str, contact_id: str):
    return cases.make_primary(_stores(ctx), client_id, contact_id).public()


@api(bp, "PUT", ONE + "/portal-access", summary="Turn portal access on or off", need="agent", tag="contacts",
     body=s.PortalAccessIn, response=s.ContactOut, also={429: INVITATION_LIMITED})
def portal_access(ctx: Ctx, client_id: str, contact_id: str):
    enabled = ctx.body().enabled
    return cases.set_portal_access(_stores(ctx), client_id, contact_id, enabled, _send_invitation).public()


@api(bp, "POST", ONE + "/portal-invitation", summary="Resend the portal invitation", need="agent",
     tag="contacts", response=s.ContactOut, also={429: INVITATION_LIMITED})
def resend_invitation(ctx: Ctx, client_id: str, contact_id: str):
    return cases.resend_invitation(_stores(ctx), client_id, contact_id, _send_invitation).public()
