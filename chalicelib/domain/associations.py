"""Links between clients (company–individual, venue–company, venue–individual), kept on both sides."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import Record, utcnow

ALLOWED_PAIRS = frozenset({frozenset({"company", "individual"}), frozenset({"venue", "company"}),
                           frozenset({"venue", "individual"})})


class Association(Record):
    """One side of a link, stored in `client_id`'s partition."""

    tenant_id: str = Field(exclude=True)
    client_id: str
    related_id: str
    role: str | None = None
    created_by: str | None = None
    created_at: datetime


class LinkView(BaseModel):
    """A link as answered from one side: the other client's current name and type."""

    related_id: str
    related_name: str
    related_type: str
    role: str | None = None


def check_pair(client: Any, related: Any) -> None:
    if client.id == related.id:
        raise ValidationFailed.field("related_id", "a client cannot be linked to itself")
    if frozenset({client.type, related.type}) not in ALLOWED_PAIRS:
        raise ValidationFailed.field(
            "related_id", f"a {client.type} cannot be linked to a {related.type}; allowed are company–individual, "
                          "venue–company and venue–individual")


def link(links: Any, clients: Any, client_id: str, related_id: str, role: str | None, *, actor: str | None,
         now: datetime | None = None) -> tuple[LinkView, bool]:
    """Link two clients (or set the role of their link); True when the link is new."""
    client = clients.get(client_id)
    related = clients.get_many([related_id]).get(related_id)
    if related is None:  # also another tenant's client: the repositories only see the caller's tenant
        raise ValidationFailed.field("related_id", "no such client")
    check_pair(client, related)
    existing = links.get(client_id, related_id)
    at = existing.created_at if existing else now or utcnow()
    created_by = existing.created_by if existing else actor
    sides = [Association(tenant_id=links.tenant_id, client_id=a, related_id=b, role=role, created_by=created_by,
                         created_at=at) for a, b in ((client_id, related_id), (related_id, client_id))]
    links.put_both(*sides)
    return LinkView(related_id=related.id, related_name=related.name, related_type=related.type, role=role), \
        existing is None


def links_of(links: Any, clients: Any, client_id: str) -> list[LinkView]:
    """The client's links with each related client's current name and type, by name."""
    clients.get(client_id)
    sides = links.of_client(client_id)
    related = clients.get_many([s.related_id for s in sides])
    views = [LinkView(related_id=s.related_id, related_name=related[s.related_id].name,
                      related_type=related[s.related_id].type, role=s.role)
             for s in sides if s.related_id in related]
    return sorted(views, key=lambda v: (v.related_name.casefold(), v.related_id))


def unlink(links: Any, client_id: str, related_id: str) -> None:
    """Remove the link from both sides (404 when the clients are not linked)."""
    links.delete_both(client_id, related_id)
