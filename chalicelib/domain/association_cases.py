"""Association use cases: link two clients (on both sides), list a client's links, unlink them."""
from __future__ import annotations

from datetime import datetime

from chalicelib.domain.associations import Association, LinkView, check_pair, link_order
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.ports import Stores
from chalicelib.domain.values import utcnow


def link(stores: Stores, client_id: str, related_id: str, role: str | None, *, actor: str | None,
         now: datetime | None = None) -> tuple[LinkView, bool]:
    """Link two clients (or set the role of their link); True when the link is new."""
    client = stores.clients.get(client_id)
    related = stores.clients.get_many([related_id]).get(related_id)
    if related is None:  # also another tenant's client: the repositories only see the caller's tenant
        raise ValidationFailed.field("related_id", "no such client")
    check_pair(client, related)
    existing = stores.associations.get(client_id, related_id)
    at = existing.created_at if existing else now or utcnow()
    created_by = existing.created_by if existing else actor
    first, second = (Association(tenant_id=stores.tenant_id, client_id=a, related_id=b, role=role,
                                 created_by=created_by, created_at=at)
                     for a, b in ((client_id, related_id), (related_id, client_id)))
    stores.associations.put_both(first, second)
    return LinkView(related_id=related.id, related_name=related.name, related_type=related.type, role=role), \
        existing is None


def links_of(stores: Stores, client_id: str) -> list[LinkView]:
    """The client's links with each related client's current name and type, by name."""
    stores.clients.get(client_id)
    sides = stores.associations.of_client(client_id)
    related = stores.clients.get_many([s.related_id for s in sides])
    views = [LinkView(related_id=s.related_id, related_name=related[s.related_id].name,
                      related_type=related[s.related_id].type, role=s.role)
             for s in sides if s.related_id in related]
    return sorted(views, key=link_order)


def unlink(stores: Stores, client_id: str, related_id: str) -> None:
    """Remove the link from both sides (404 when the clients are not linked)."""
    stores.associations.delete_both(client_id, related_id)
