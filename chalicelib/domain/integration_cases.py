"""Integration use cases: upserts of projects and invoices pushed by other modules, and feedback; each rescores."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ulid import ULID

from chalicelib.domain.clients import Client
from chalicelib.domain.errors import Conflict, Contention, NotFound, ValidationFailed
from chalicelib.domain.feedback import Feedback
from chalicelib.domain.integrations import Invoice, Project, needs_active_client
from chalicelib.domain.ports import Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.scoring_cases import rescore
from chalicelib.domain.values import utcnow

INACTIVE = ("inactive", "archived")
F = TypeVar("F", Project, Invoice)  # a fact pushed by another module

log = logging.getLogger(__name__)


def _client(stores: Stores, client_id: str) -> Client:
    try:
        return stores.clients.get(client_id)
    except NotFound:
        raise ValidationFailed.field("client_id", "is not a client of this tenant") from None


def upsert_project(stores: Stores, project_id: str, data: dict[str, Any], now: datetime | None = None
                   ) -> tuple[Project, bool]:
    """Create or replace a project; True when it is new. Inactive and archived clients take no new project and
    no move to planned or active (409 client_not_active)."""
    client = _client(stores, data["client_id"])
    live = {c.id for c in stores.contacts.of_client(client.id)}
    bad = [{"field": f"contact_ids.{n}", "message": f"{cid} is not a contact of the client"}
           for n, cid in enumerate(data.get("contact_ids", [])) if cid not in live]
    if bad:
        raise ValidationFailed("contact_ids are invalid", bad)

    def build(old: Project | None, at: datetime) -> Project:
        if client.status in INACTIVE and needs_active_client(old, client.id, data["status"]):
            raise Conflict("client_not_active",
                           f"the client is {client.status}: it takes no new project and no move to planned or active")
        return Project(**data, id=project_id, tenant_id=stores.tenant_id,
                       created_at=old.created_at if old else at, updated_at=at)

    return _upsert(stores, lambda: stores.facts.project(project_id), build, stores.facts.save_project, now)


def upsert_invoice(stores: Stores, invoice_id: str, data: dict[str, Any], now: datetime | None = None
                   ) -> tuple[Invoice, bool]:
    """Create or replace an invoice, quote or credit note; a quote's portal approval is kept."""
    client = _client(stores, data["client_id"])
    data = {"currency": client.currency, **data}

    def build(old: Invoice | None, at: datetime) -> Invoice:
        kept = {"approved_at": old.approved_at, "approved_by": old.approved_by} if old else {}
        if old is not None and old.status == "approved" and data["status"] == "open":
            kept["status"] = "approved"  # a stale push never takes back an approval made in the portal
        return Invoice(**{**data, **kept}, id=invoice_id, tenant_id=stores.tenant_id,
                       created_at=old.created_at if old else at, updated_at=at)

    return _upsert(stores, lambda: stores.facts.invoice(invoice_id), build, stores.facts.save_invoice, now)


def get_project(stores: Stores, project_id: str) -> Project:
    project = stores.facts.project(project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


def get_invoice(stores: Stores, invoice_id: str) -> Invoice:
    invoice = stores.facts.invoice(invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return invoice


def _upsert(stores: Stores, read: Callable[[], F | None], build: Callable[[F | None, datetime], F],
            save: Callable[[F | None, F], None], now: datetime | None) -> tuple[F, bool]:
    """Read the fact, build its new state, write it over what was read unless equal; a race is read again."""
    def attempt() -> tuple[F | None, F, bool]:
        old = read()
        fact = build(old, now or utcnow())
        if old is not None and fact.model_copy(update={"updated_at": old.updated_at}) == old:
            return old, old, False
        save(old, fact)
        return old, fact, True

    old, fact, written = retrying(attempt, "the fact")
    if written:
        _rescore(stores, fact.client_id, *([old.client_id] if old is not None else []))
    return fact, old is None


def _rescore(stores: Stores, *client_ids: str) -> None:
    """Scores follow a written fact at once; should rescoring keep losing races, the stream's rescore of the
    fact follows, so the request, whose fact is stored, still succeeds."""
    for client_id in dict.fromkeys(client_ids):
        try:
            rescore(stores, client_id)
        except Contention:
            log.warning("rescoring client %s kept losing races; the stream rescores it", client_id)


def add_feedback(stores: Stores, client_id: str, data: dict[str, Any], *, actor: str | None) -> Feedback:
    """Record a rating; it moves the health score at once."""
    stores.clients.get(client_id)
    if data.get("project_id"):
        project = stores.facts.project(data["project_id"])
        if project is None or project.client_id != client_id:
            raise ValidationFailed.field("project_id", "is not a project of this client")
    now = utcnow()
    feedback = Feedback(**data, id=str(ULID.from_datetime(now)), tenant_id=stores.tenant_id, client_id=client_id,
                        created_by=actor, created_at=now)
    stores.facts.add_feedback(feedback)
    _rescore(stores, client_id)
    return feedback
