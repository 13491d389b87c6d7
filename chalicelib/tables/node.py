"""Node platform bookkeeping: links from Node client ids, held events, and webhook ids claimed or processed."""
from __future__ import annotations

import math
import time
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.config import get_settings
from chalicelib.domain.node_sync import HeldEvent
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import NodeHeldItem, NodeLinkItem, WebhookSeenItem

SEEN_TTL = 7 * 24 * 3600  # far beyond the 5-minute signature window, after which a replay is refused anyway
PENDING, DONE = "pending", "done"


def lease_seconds() -> float:
    """How long a claim holds: a delivery still running after the function's timeout has been killed."""
    return get_settings().function_timeout


class NodeRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def claim(self, webhook_id: str) -> str:
        """Claim a webhook id before applying it: "claimed" (go ahead), "done" (processed) or "running".

        One conditional put decides between parallel deliveries. A claim still pending after the function's
        timeout was left by a delivery that died, so it may be taken over.
        """
        pk = keys.webhook_seen_pk(self.tenant_id, webhook_id)
        now = time.time()
        item = WebhookSeenItem(pk, keys.UNIQUE_SK, state=PENDING, lease_until=math.ceil(now + lease_seconds()),
                               expires_at=int(now) + SEEN_TTL)
        free = WebhookSeenItem.pk.does_not_exist() | (WebhookSeenItem.expires_at < int(now)) \
            | ((WebhookSeenItem.state == PENDING) & (WebhookSeenItem.lease_until < now))
        with storage_errors():
            try:
                item.save(condition=free)
                return "claimed"
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
            try:
                existing = WebhookSeenItem.get(pk, keys.UNIQUE_SK, consistent_read=True)
            except WebhookSeenItem.DoesNotExist:
                return "running"  # released just now by a delivery that failed: Node's retry will claim it
        return "running" if existing.state == PENDING else "done"

    def complete(self, webhook_id: str) -> None:
        """The delivery was applied: later deliveries of the id have no effect."""
        with storage_errors():
            WebhookSeenItem(keys.webhook_seen_pk(self.tenant_id, webhook_id), keys.UNIQUE_SK).update(
                actions=[WebhookSeenItem.state.set(DONE), WebhookSeenItem.lease_until.remove()])

    def unclaim(self, webhook_id: str) -> None:
        """Applying failed: free the id so Node's retry runs it again (never a processed one)."""
        with storage_errors():
            try:
                WebhookSeenItem(keys.webhook_seen_pk(self.tenant_id, webhook_id), keys.UNIQUE_SK).delete(
                    condition=WebhookSeenItem.state == PENDING)
            except DeleteError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

    def linked_client(self, node_client_id: str) -> str | None:
        with storage_errors():
            try:
                return NodeLinkItem.get(keys.node_link_pk(self.tenant_id, node_client_id), keys.UNIQUE_SK,
                                        consistent_read=True).client_id
            except NodeLinkItem.DoesNotExist:
                return None

    def link(self, node_client_id: str, client_id: str) -> None:
        with storage_errors():
            NodeLinkItem(keys.node_link_pk(self.tenant_id, node_client_id), keys.UNIQUE_SK,
                         client_id=client_id).save()

    def hold(self, node_client_id: str, webhook_id: str, occurred_at: str, event: dict[str, Any]) -> None:
        item = NodeHeldItem(keys.node_held_pk(self.tenant_id, node_client_id), f"{occurred_at}#{webhook_id}",
                            event=event, webhook_id=webhook_id)
        with storage_errors():
            try:
                item.save(condition=NodeHeldItem.sk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

    def held(self, node_client_id: str) -> list[HeldEvent]:
        """Held events in the order they occurred."""
        with storage_errors():
            items = list(NodeHeldItem.query(keys.node_held_pk(self.tenant_id, node_client_id), consistent_read=True))
        return [HeldEvent(node_client_id=node_client_id, webhook_id=i.webhook_id,
                          occurred_at=i.sk.split("#", 1)[0], event=i.event) for i in items]

    def release(self, held: HeldEvent) -> None:
        """The held event was applied: forget it."""
        with storage_errors():
            NodeHeldItem(keys.node_held_pk(self.tenant_id, held.node_client_id),
                         f"{held.occurred_at}#{held.webhook_id}").delete()
