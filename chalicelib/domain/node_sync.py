"""Node platform events: their payloads, and how a Node user maps onto a client's contact."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from chalicelib.domain.contacts import Contact, split_name
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import MAX_ID_LENGTH, Model

NODE_URL = "https://nodes.nexusrms.io/clients/{}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, defer_build=True)  # Node may add fields


class NodeEvent(_Model):
    type: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1, max_length=64, pattern=r"^[^#]+$")
    occurred_at: datetime
    data: dict[str, Any]


class ClientLinked(_Model):
    node_client_id: str = Field(min_length=1, max_length=100)
    client_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)


class NodeUser(_Model):
    id: str = Field(min_length=1, max_length=100)
    full_name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    phone: str | None = Field(default=None, max_length=50)
    job_title: str | None = Field(default=None, max_length=100)
    updated_at: datetime


class UserUpserted(_Model):
    node_client_id: str = Field(min_length=1, max_length=100)
    user: NodeUser


class UserRemoved(_Model):
    node_client_id: str = Field(min_length=1, max_length=100)
    user_id: str = Field(min_length=1, max_length=100)


Payload = ClientLinked | UserUpserted | UserRemoved
PAYLOADS: dict[str, type[Payload]] = {"client.linked": ClientLinked, "user.upserted": UserUpserted,
                                      "user.removed": UserRemoved}


class HeldEvent(Model):
    """An event for a Node client not linked yet, kept until `client.linked` arrives."""

    node_client_id: str
    webhook_id: str
    occurred_at: str  # as the event said it, when held: held events are applied in this order
    event: dict[str, Any]


def parse(event: NodeEvent) -> Payload | None:
    """The typed payload of a known event type (422 naming the field when malformed), None when unknown."""
    model = PAYLOADS.get(event.type)
    if model is None:
        return None
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        details = [{"field": "data." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("the event data is invalid", details) from None


def synced_contact(contacts: list[Contact], user_id: str, email: str | None = None) -> Contact | None:
    """The client's contact for a Node user: by node_user_id, else a not-yet-synced contact with its email."""
    for contact in contacts:
        if contact.node_user_id == user_id:
            return contact
    if email:
        for contact in contacts:
            if not contact.node_user_id and contact.email.casefold() == email.casefold():
                return contact
    return None


def user_fields(user: NodeUser) -> dict[str, Any]:
    """What a Node user sets on its contact."""
    return {"full_name": user.full_name, "email": str(user.email), "phone": user.phone,
            "job_title": user.job_title, "synced_from_node": True, "node_user_id": user.id,
            "node_updated_at": user.updated_at}


def with_user(contact: Contact, user: NodeUser, now: datetime) -> Contact:
    """The contact as the Node user describes it; an update older than (or as old as) the stored one changes
    nothing."""
    if contact.node_updated_at and user.updated_at <= contact.node_updated_at:
        return contact
    first, last = split_name(user.full_name)
    return contact.model_copy(update={**user_fields(user), "first_name": first, "last_name": last,
                                      "last_synced_at": now, "updated_at": now})
