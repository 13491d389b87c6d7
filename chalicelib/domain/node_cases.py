"""Node platform use cases: each webhook applied once, clients linked, Node-synced contacts kept as Node says."""
from __future__ import annotations

import contextlib
from typing import Literal

from chalicelib.domain import contact_cases
from chalicelib.domain.client_cases import update_client
from chalicelib.domain.contacts import Contact
from chalicelib.domain.errors import InProgress
from chalicelib.domain.node_sync import (
    NODE_URL,
    ClientLinked,
    NodeEvent,
    NodeUser,
    UserUpserted,
    parse,
    synced_contact,
    user_fields,
    with_user,
)
from chalicelib.domain.ports import Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.values import utcnow

Outcome = Literal["processed", "accepted", "duplicate"]


def receive(stores: Stores, webhook_id: str, event: NodeEvent) -> Outcome:
    """Apply a delivery once per webhook id: "processed", "accepted" (ignored or held) or "duplicate".

    The id is claimed before anything is applied, so of parallel deliveries one applies it; a delivery that
    fails frees the id again for Node's retry. One arriving while another still applies it is told to retry.
    """
    claim = stores.node.claim(webhook_id)
    if claim == "done":
        return "duplicate"
    if claim == "running":
        raise InProgress("webhook_in_progress", "a delivery of this webhook-id is being applied; retry later")
    try:
        processed = _apply(stores, webhook_id, event)
    except Exception:
        with contextlib.suppress(Exception):  # unreachable too: the claim's lease lapses by itself
            stores.node.unclaim(webhook_id)
        raise
    stores.node.complete(webhook_id)
    return "processed" if processed else "accepted"


def _apply(stores: Stores, webhook_id: str, event: NodeEvent) -> bool:
    """Apply one event: True when processed, False when ignored (unknown type) or held for a client not linked."""
    payload = parse(event)
    if payload is None:
        return False
    if isinstance(payload, ClientLinked):
        link_client(stores, payload)
        return True
    client_id = stores.node.linked_client(payload.node_client_id)
    if client_id is None:
        stores.node.hold(payload.node_client_id, webhook_id, event.occurred_at.isoformat(),
                         event.model_dump(mode="json"))
        return False
    if isinstance(payload, UserUpserted):
        upsert_user(stores, client_id, payload.user)
    else:
        remove_user(stores, client_id, payload.user_id)
    return True


def link_client(stores: Stores, payload: ClientLinked) -> None:
    """Point the client at its Node account, then apply what was held for it, oldest first."""
    client = stores.clients.get(payload.client_id)  # another tenant's client: 404, nothing changed
    url = NODE_URL.format(payload.node_client_id)
    if (client.node_client_id, client.node_url) != (payload.node_client_id, url):
        update_client(stores, client.id, {"node_client_id": payload.node_client_id, "node_url": url})
    stores.node.link(payload.node_client_id, client.id)
    for held in stores.node.held(payload.node_client_id):
        _apply(stores, held.webhook_id, NodeEvent.model_validate(held.event))
        stores.node.release(held)


def upsert_user(stores: Stores, client_id: str, user: NodeUser) -> Contact:
    """Create or update the Node-synced contact; an update older than the one stored is ignored.

    One Node user is one contact of the client: the create reserves the user (a uniqueness item in the same
    transaction), so of parallel deliveries one creates and the others, losing the race, read again and update.
    """
    def attempt() -> Contact:
        existing = synced_contact(stores.contacts.of_client(client_id), user.id, str(user.email))
        if existing is None:
            return contact_cases.add_once(stores, client_id, {**user_fields(user), "last_synced_at": utcnow()})
        return contact_cases.change_once(stores, client_id, existing.id,
                                         lambda client, contact, now: with_user(contact, user, now))

    return retrying(attempt, "the Node user's contact")


def remove_user(stores: Stores, client_id: str, user_id: str) -> Contact | None:
    """Node no longer has the user: the contact stays, editable, and no longer synced."""
    existing = synced_contact(stores.contacts.of_client(client_id), user_id)
    if existing is None or not existing.synced_from_node:
        return existing
    return contact_cases.change(stores, client_id, existing.id, lambda client, contact, now: contact.model_copy(
        update={"synced_from_node": False, "updated_at": now}))
