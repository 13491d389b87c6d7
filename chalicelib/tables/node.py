"""Node platform bookkeeping: links from Node client ids, held events, and webhook ids already processed."""
from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.items import NodeHeldItem, NodeLinkItem, WebhookSeenItem
from chalicelib.tables.errors import storage_errors

SEEN_TTL = 7 * 24 * 3600  # far beyond the 5-minute signature window, after which a replay is refused anyway


class NodeRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def seen(self, webhook_id: str) -> bool:
        with storage_errors():
            try:
                item = WebhookSeenItem.get(keys.webhook_seen_pk(self.tenant_id, webhook_id), keys.UNIQUE_SK,
                                           consistent_read=True)
            except WebhookSeenItem.DoesNotExist:
                return False
        return item.expires_at > time.time()

    def mark_seen(self, webhook_id: str) -> None:
        with storage_errors():
            WebhookSeenItem(keys.webhook_seen_pk(self.tenant_id, webhook_id), keys.UNIQUE_SK,
                            expires_at=int(time.time()) + SEEN_TTL).save()

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

    def held(self, node_client_id: str) -> list[NodeHeldItem]:
        """Held events in the order they occurred."""
        with storage_errors():
            return list(NodeHeldItem.query(keys.node_held_pk(self.tenant_id, node_client_id), consistent_read=True))

    def release(self, item: NodeHeldItem) -> None:
        with storage_errors():
            item.delete()
