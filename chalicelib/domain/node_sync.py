"""Node platform events: link clients, and keep Node-synced contacts as Node last described them."""
from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from chalicelib.domain import contact_cases as cc
from chalicelib.domain import contacts as dk
from chalicelib.domain.client_cases import update_client
from chalicelib.domain.errors import InProgress, ValidationFailed
from chalicelib.domain.retry import retrying
from chalicelib.domain.values import MAX_ID_LENGTH, utcnow

NODE_URL = "https://nodes.nexusrms.io/clients/{}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)  # Node may add fields


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


PAYLOADS: dict[str, type[_Model]] = {"client.linked": ClientLinked, "user.upserted": UserUpserted,
                                     "user.removed": UserRemoved}


class NodeStore(Protocol):
    def claim(self, webhook_id: str) -> str: ...
    def complete(self, webhook_id: str) -> None: ...
    def unclaim(self, webhook_id: str) -> None: ...
    def linked_client(self, node_client_id: str) -> str | None: ...
    def link(self, node_client_id: str, client_id: str) -> None: ...
    def hold(self, node_client_id: str, webhook_id: str, occurred_at: str, event: dict) -> None: ...
    def held(self, node_client_id: str) -> list: ...
    def release(self, item: Any) -> None: ...


def parse(event: NodeEvent) -> _Model | None:
    """The typed payload of a known event type (422 naming the field when malformed), None when unknown."""
    model = PAYLOADS.get(event.type)
    if model is None:
        return None
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        details = [{"field": "data." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("the event data is invalid", details) from None


def receive(stores: cc.Stores, node: NodeStore, webhook_id: str, event: NodeEvent) -> str:
    """Apply a delivery once per webhook id: "processed", "accepted" (ignored or held) or "duplicate".

    The id is claimed before anything is applied, so of parallel deliveries one applies it; a delivery that
    fails frees the id again for Node's retry. One arriving while another still applies it is told to retry.
    """
    claim = node.claim(webhook_id)
    if claim == "done":
        return "duplicate"
    if claim == "running":
        raise InProgress("webhook_in_progress", "a delivery of this webhook-id is being applied; retry later")
    try:
        status = apply(stores, node, webhook_id, event)
    except Exception:
        with contextlib.suppress(Exception):  # unreachable too: the claim's lease lapses by itself
            node.unclaim(webhook_id)
        raise
    node.complete(webhook_id)
    return "processed" if status == 200 else "accepted"


def apply(stores: cc.Stores, node: NodeStore, webhook_id: str, event: NodeEvent) -> int:
    """Apply one event; answers 200 when processed, 202 when ignored or held for a client not linked yet."""
    payload = parse(event)
    if payload is None:
        return 202
    if isinstance(payload, ClientLinked):
        link_client(stores, node, payload)
        return 200
    client_id = node.linked_client(payload.node_client_id)
    if client_id is None:
        node.hold(payload.node_client_id, webhook_id, event.occurred_at.isoformat(), event.model_dump(mode="json"))
        return 202
    if isinstance(payload, UserUpserted):
        upsert_user(stores, client_id, payload.user)
    else:
        remove_user(stores, client_id, payload.user_id)
    return 200


def link_client(stores: cc.Stores, node: NodeStore, payload: ClientLinked) -> None:
    """Point the client at its Node account, then apply what was held for it, oldest first."""
    client = stores.clients.get(payload.client_id)  # another tenant's client: 404, nothing changed
    url = NODE_URL.format(payload.node_client_id)
    if (client.node_client_id, client.node_url) != (payload.node_client_id, url):
        update_client(stores.clients, stores.settings, client.id,
                      {"node_client_id": payload.node_client_id, "node_url": url}, expected_version=None,
                      categories=stores.categories)
    node.link(payload.node_client_id, client.id)
    for item in node.held(payload.node_client_id):
        apply(stores, node, item.webhook_id, NodeEvent.model_validate(item.event))
        node.release(item)


def _synced(stores: cc.Stores, client_id: str, user_id: str, email: str | None = None) -> dk.Contact | None:
    """The client's contact for a Node user: by node_user_id, else a not-yet-synced contact with its email."""
    contacts = stores.contacts.of_client(client_id)
    for contact in contacts:
        if contact.node_user_id == user_id:
            return contact
    if email:
        for contact in contacts:
            if not contact.node_user_id and contact.email.casefold() == email.casefold():
                return contact
    return None


def upsert_user(stores: cc.Stores, client_id: str, user: NodeUser) -> dk.Contact | None:
    """Create or update the Node-synced contact; an update older than the one stored is ignored.

    One Node user is one contact of the client: the create reserves the user (a uniqueness item in the same
    transaction), so of parallel deliveries one creates and the others, losing the race, read again and update.
    """
    fields = {"full_name": user.full_name, "email": str(user.email), "phone": user.phone,
              "job_title": user.job_title, "synced_from_node": True, "node_user_id": user.id,
              "node_updated_at": user.updated_at}

    def edit(client, contact: dk.Contact, now: datetime) -> dk.Contact:
        if contact.node_updated_at and user.updated_at <= contact.node_updated_at:
            return contact  # an older (or the same) update: nothing to do
        first, last = dk.split_name(user.full_name)
        return contact.model_copy(update={**fields, "first_name": first, "last_name": last,
                                          "last_synced_at": now, "updated_at": now})

    def attempt() -> dk.Contact:
        existing = _synced(stores, client_id, user.id, str(user.email))
        if existing is None:
            return cc.add_once(stores, client_id, {**fields, "last_synced_at": utcnow()})
        return cc.change_once(stores, client_id, existing.id, edit)

    return retrying(attempt, "the Node user's contact")


def remove_user(stores: cc.Stores, client_id: str, user_id: str) -> dk.Contact | None:
    """Node no longer has the user: the contact stays, editable, and no longer synced."""
    existing = _synced(stores, client_id, user_id)
    if existing is None or not existing.synced_from_node:
        return existing
    return cc.change(stores, client_id, existing.id, lambda client, contact, now: contact.model_copy(
        update={"synced_from_node": False, "updated_at": now}))
