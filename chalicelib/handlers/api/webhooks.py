"""Node platform webhooks: Standard Webhooks signatures, replay protection, then the event's effect."""
from __future__ import annotations

import json

from chalice import Blueprint
from pydantic import BaseModel
from standardwebhooks.webhooks import Webhook

from chalicelib.config import get_settings
from chalicelib.domain import node_sync
from chalicelib.domain.errors import InvalidJson, Unauthorized
from chalicelib.handlers.routing import Ctx, api, json_response
from chalicelib.tables.node import NodeRepository
from chalicelib.tables.stores import Stores

bp = Blueprint(__name__)


class WebhookAnswer(BaseModel):
    status: str


def verify(raw: bytes, headers: dict) -> None:
    """401 unless the body is signed with NODE_WEBHOOK_SECRET and the timestamp is within 5 minutes."""
    secret = get_settings().node_webhook_secret
    if not secret:
        raise Unauthorized("webhooks are not configured (NODE_WEBHOOK_SECRET)")
    wanted = {k: headers.get(k) or "" for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        Webhook(secret).verify(raw, wanted, json_parse=False)
    except Exception:  # bad signature, stale timestamp, malformed headers or body: all the same to a forger
        raise Unauthorized("the webhook signature is missing, wrong or too old") from None


@api(bp, "POST", "/v1/webhooks/node", summary="Receive a Node platform event (Standard Webhooks signed)",
     need="public", tag="webhooks", body=node_sync.NodeEvent, response=WebhookAnswer)
def node_webhook(ctx: Ctx):
    raw = ctx.request.raw_body or b""
    verify(raw, ctx.request.headers)
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidJson("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidJson("the body must be a JSON object")
    event = node_sync.NodeEvent.model_validate(data)
    webhook_id = ctx.header("webhook-id")
    tenant = event.tenant_id
    node = NodeRepository(tenant)
    if node.seen(webhook_id):
        return {"status": "duplicate"}
    stores = Stores(tenant)
    status = node_sync.apply(stores, node, webhook_id, event)
    node.mark_seen(webhook_id)
    return json_response({"status": "processed" if status == 200 else "accepted"}, status)
