"""Portal use cases: sign in with an invitation, each view of the contact's own client, quote approval, the log."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chalicelib.domain import contact_cases
from chalicelib.domain.communications import Communication
from chalicelib.domain.contacts import Contact, parse_invitation_token
from chalicelib.domain.errors import NotFound, Unauthorized
from chalicelib.domain.portal import (
    PortalClient,
    PortalCommunication,
    PortalContact,
    PortalDocument,
    PortalLogEntry,
    PortalThread,
    Visitor,
    approve,
    check_session,
    client_view,
    communication_view,
    contact_view,
    documents,
    issued,
    issued_order,
    shown,
    thread_order,
    thread_views,
    visible,
)
from chalicelib.domain.ports import Position, Stores
from chalicelib.domain.settings import PortalSettings
from chalicelib.domain.values import iso, utcnow

S = TypeVar("S")
# page(items, position): the page of `items` (newest first by `position`) a request asks for, and where the
# next page starts (None at the end), as the edge encodes it: the views never read it.
Pager = Callable[[list[Any], Callable[[Any], list[str]]], tuple[list[Any], str | None]]
Profile = tuple[PortalContact, PortalClient]


@dataclass(frozen=True)
class _Session:
    """A portal request whose contact was checked just now: it exists, has access, and the portal is on."""

    stores: Stores
    contact: Contact
    settings: PortalSettings

    @property
    def client_id(self) -> str:
        return self.contact.client_id

    def log(self, action: str, detail: dict[str, Any] | None = None) -> None:
        _log(self.stores, self.contact, action, detail)


def _log(stores: Stores, contact: Contact, action: str, detail: dict[str, Any] | None = None) -> None:
    stores.portal.log(contact.client_id, contact.id, contact.full_name, action, detail, utcnow())


def _session(stores: Stores, visitor: Visitor) -> _Session:
    settings = stores.settings.get("portal")
    try:
        contact: Contact | None = stores.contacts.get(visitor.client_id, visitor.contact_id, include_deleted=True)
    except NotFound:
        contact = None
    return _Session(stores, check_session(contact, settings, visitor.client_id), settings)


def sign_in(stores_for: Callable[[str], Stores], token: str, issue: Callable[[Contact], S]) -> S:
    """Use an invitation link (401 unless it is the contact's latest, unused and unexpired one): `issue` makes
    the portal session, and the sign-in is logged."""
    parsed = parse_invitation_token(token)
    if parsed is None:
        raise Unauthorized("the invitation is unknown, used, voided or expired")
    tenant_id, client_id, contact_id, secret = parsed
    stores = stores_for(tenant_id)
    contact = contact_cases.accept_invitation(stores, client_id, contact_id, secret)
    session = issue(contact)
    _log(stores, contact, "sign_in")
    return session


def profile(stores: Stores, visitor: Visitor) -> Profile:
    """The contact and its client, as the contact sees them."""
    session = _session(stores, visitor)
    client = stores.clients.get(session.client_id)
    session.log("view_profile")
    return contact_view(session.contact), client_view(client)


def update_profile(stores: Stores, visitor: Visitor, changes: dict[str, Any]) -> Profile:
    """Change the contact's own phone, mobile or job title."""
    session = _session(stores, visitor)
    contact = contact_cases.update_contact(stores, session.client_id, session.contact.id, changes, None)
    session.log("update_profile", {"fields": sorted(changes)})
    client = stores.clients.get(session.client_id)
    return contact_view(contact), client_view(client)


def _occurred(comm: Communication) -> list[str]:
    return [iso(comm.occurred_at), comm.id]


def communications(stores: Stores, visitor: Visitor, page: Pager) -> tuple[list[PortalCommunication], str | None]:
    """A page of the client's messages, newest first (never internal notes or drafts)."""
    session = _session(stores, visitor)
    shown(session.settings, "show_communications", "communications")
    comms = sorted((c for c in stores.facts.client_records(session.client_id).communications if visible(c)),
                   key=lambda c: (c.occurred_at, c.id), reverse=True)
    found, next_page = page(comms, _occurred)
    session.log("view_communications")
    return [communication_view(c) for c in found], next_page


def threads(stores: Stores, visitor: Visitor, page: Pager) -> tuple[list[PortalThread], str | None]:
    """A page of the client's conversation threads, latest activity first."""
    session = _session(stores, visitor)
    shown(session.settings, "show_communications", "communications")
    records = stores.facts.client_records(session.client_id)
    found, next_page = page(sorted(records.threads, key=thread_order, reverse=True), thread_order)
    session.log("view_threads")
    return thread_views(found, records.communications), next_page


def thread(stores: Stores, visitor: Visitor, thread_id: str) -> tuple[PortalThread, list[PortalCommunication]]:
    """A thread of the client with the messages the contact may see, oldest first."""
    session = _session(stores, visitor)
    shown(session.settings, "show_communications", "communications")
    records = stores.facts.client_records(session.client_id)
    found = [t for t in records.threads if t.id == thread_id]
    if not found:
        raise NotFound(f"thread {thread_id} not found")
    messages = sorted((c for c in records.communications if c.thread_id == thread_id and visible(c)),
                      key=lambda c: (c.occurred_at, c.id))
    session.log("view_thread", {"thread_id": thread_id})
    return thread_views(found, records.communications)[0], [communication_view(c) for c in messages]


def _documents(session: _Session, page: Pager, name: str, kinds: tuple[str, ...]
               ) -> tuple[list[PortalDocument], str | None]:
    records = session.stores.facts.client_records(session.client_id)
    found, next_page = page(issued(records.invoices, kinds), issued_order)
    session.log(f"view_{name}")
    return documents(found, kinds), next_page


def quotes(stores: Stores, visitor: Visitor, page: Pager) -> tuple[list[PortalDocument], str | None]:
    """A page of the client's issued quotes, newest first."""
    return _documents(_session(stores, visitor), page, "quotes", ("quote",))


def invoices(stores: Stores, visitor: Visitor, page: Pager) -> tuple[list[PortalDocument], str | None]:
    """A page of the client's issued invoices and credit notes, newest first."""
    session = _session(stores, visitor)
    shown(session.settings, "show_invoices", "invoices")
    return _documents(session, page, "invoices", ("invoice", "credit_note"))


def approve_quote(stores: Stores, visitor: Visitor, quote_id: str) -> PortalDocument:
    """Approve an open quote of the contact's client, once (409 when it is no longer open)."""
    session = _session(stores, visitor)
    approved = approve(stores.facts.invoice(quote_id), session.settings, session.contact, utcnow())
    stores.portal.approve(approved)
    session.log("approve_quote", {"quote_id": quote_id, "amount": str(approved.amount)})
    return documents([approved], ("quote",))[0]


def activity(stores: Stores, client_id: str, limit: int, after: Position | None
             ) -> tuple[list[PortalLogEntry], Position | None]:
    """One page of a client's portal sign-ins, views and approvals, newest first (404 for another tenant's)."""
    stores.clients.get(client_id)
    return stores.portal.page(client_id, limit, after)
