"""The client portal: what a contact may see of its own client, its own answer models, and its rules."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib.domain.clients import Address, Client
from chalicelib.domain.communications import Communication
from chalicelib.domain.contacts import Contact
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, Unauthorized
from chalicelib.domain.integrations import Invoice
from chalicelib.domain.settings import PortalSettings
from chalicelib.domain.threads import Thread, thread_stats
from chalicelib.domain.values import MoneyOut, Record, iso

HIDDEN_STATUSES = ("draft", "failed")  # unsent messages are staff work in progress


class PortalContact(Record):
    """A contact as the contact sees itself: no staff notes, no flags staff use internally."""

    id: str
    full_name: str
    first_name: str | None = None
    last_name: str | None = None
    email: str
    phone: str | None = None
    mobile: str | None = None
    job_title: str | None = None
    is_primary: bool
    is_billing_contact: bool
    synced_from_node: bool


class PortalClient(Record):
    """The client as its contacts see it: no scores, tags, categories, pricing or internal notes."""

    id: str
    client_number: str
    type: str
    name: str
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    addresses: list[Address] = Field(default_factory=list)
    currency: str


class PortalCommunication(Record):
    id: str
    type: str
    direction: str
    status: str
    subject: str | None = None
    body: str | None = None
    from_email: str | None = None
    to_email: str | None = None
    meeting_date: date | None = None
    start_time: str | None = None
    end_time: str | None = None
    location: str | None = None
    thread_id: str | None = None
    occurred_at: datetime


class PortalThread(Record):
    id: str
    subject: str
    type: str
    status: str
    messages_count: int
    last_activity_at: datetime | None = None
    preview: str | None = None


class PortalDocument(Record):
    """A quote, invoice or credit note; the ids are the finance module's."""

    id: str
    kind: Literal["quote", "invoice", "credit_note"]
    amount: MoneyOut
    currency: str
    status: str
    issued_at: datetime | None = None
    due_date: date | None = None
    paid_at: datetime | None = None
    approved_at: datetime | None = None
    approved_by: str | None = None


class PortalLogEntry(Record):
    """One portal sign-in, view or action of a client's contact."""

    id: str
    at: datetime
    contact_id: str
    contact_name: str | None
    action: str
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class Visitor:
    """Who a portal request is from: the contact its session token names, and the contact's client."""

    client_id: str
    contact_id: str


def check_session(contact: Contact | None, settings: PortalSettings, client_id: str) -> Contact:
    """Every portal request: the contact still exists, still has access, and the tenant's portal is on (else 401)."""
    if contact is None or contact.is_deleted or not contact.portal_access or not settings.enabled \
            or contact.client_id != client_id:
        raise Unauthorized("portal access has ended")
    return contact


def contact_view(contact: Contact) -> PortalContact:
    return PortalContact.model_validate(contact.model_dump())


def client_view(client: Client) -> PortalClient:
    return PortalClient.model_validate(client.model_dump())


def visible(comm: Communication) -> bool:
    """Notes are internal, drafts and failed sends unsent, deleted ones gone."""
    return comm.deleted_at is None and comm.type != "note" and comm.status not in HIDDEN_STATUSES


def communication_view(comm: Communication) -> PortalCommunication:
    return PortalCommunication.model_validate(comm.model_dump())


def thread_views(threads: list[Thread], comms: list[Communication]) -> list[PortalThread]:
    """Threads with counts and previews computed from what the contact may see, not from internal notes."""
    stats = thread_stats([c for c in comms if visible(c)])
    out = []
    for thread in sorted(threads, key=thread_order, reverse=True):
        count, last, preview = stats.get(thread.id, (0, None, None))
        out.append(PortalThread(id=thread.id, subject=thread.subject, type=thread.type, status=thread.status,
                                messages_count=count, last_activity_at=last, preview=preview))
    return out


def thread_order(thread: Thread) -> list[str]:
    """Where a thread sorts (latest activity, then id) and so where a page of them resumes."""
    return [iso(thread.last_activity_at or thread.created_at), thread.id]


def issued(invoices: list[Invoice], kinds: tuple[str, ...]) -> list[Invoice]:
    """Quotes or invoices the finance module has issued (drafts stay internal), newest first."""
    return sorted((i for i in invoices if i.kind in kinds and i.status != "draft"), key=issued_order, reverse=True)


def issued_order(invoice: Invoice) -> list[str]:
    return [iso(invoice.issued_at or invoice.created_at), invoice.id]


def documents(invoices: list[Invoice], kinds: tuple[str, ...]) -> list[PortalDocument]:
    """The answers for the issued quotes or invoices among `invoices`, newest first."""
    return [PortalDocument.model_validate(i.model_dump()) for i in issued(invoices, kinds)]


def shown(settings: PortalSettings, switch: str, what: str) -> None:
    if not getattr(settings, switch):
        raise Forbidden(f"the portal does not show {what}")


def approve(quote: Invoice | None, settings: PortalSettings, contact: Contact, now: datetime) -> Invoice:
    """An open quote of the contact's client, approved once, recording who and when."""
    if not settings.allow_quote_approval:
        raise Forbidden("quote approval is turned off for the portal")
    if quote is None or quote.kind != "quote" or quote.client_id != contact.client_id or quote.status == "draft":
        raise NotFound("quote not found")
    if quote.status != "open":
        raise Conflict("quote_not_open", f"the quote is {quote.status}, not open")
    return quote.model_copy(update={"status": "approved", "approved_at": now, "approved_by": contact.id,
                                    "updated_at": now})

