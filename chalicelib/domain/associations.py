"""Links between clients (company–individual, venue–company, venue–individual), kept on both sides."""
from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib.domain.clients import Client
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import Model, Record

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


class LinkView(Model):
    """A link as answered from one side: the other client's current name and type."""

    related_id: str
    related_name: str
    related_type: str
    role: str | None = None


def link_order(view: LinkView) -> list[str]:
    """A client's links go by the related client's name (ignoring case), ids breaking ties."""
    return [view.related_name.casefold(), view.related_id]


def check_pair(client: Client, related: Client) -> None:
    if client.id == related.id:
        raise ValidationFailed.field("related_id", "a client cannot be linked to itself")
    if frozenset({client.type, related.type}) not in ALLOWED_PAIRS:
        raise ValidationFailed.field(
            "related_id", f"a {client.type} cannot be linked to a {related.type}; allowed are company–individual, "
                          "venue–company and venue–individual")
