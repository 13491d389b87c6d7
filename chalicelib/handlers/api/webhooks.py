"""Node platform webhooks: Standard Webhooks signatures, then the event applied once per webhook id."""
from __future__ import annotations

from typing import Literal

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
    status: Literal["processed", "duplicate", "accepted"]


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
     need="public", tag="webhooks", body=node_sync.NodeEvent, response=WebhookAnswer,
     also={202: "Accepted: an unknown type (ignored) or a Node client not linked yet (held for it).",
           409: "`webhook_in_progress`: a delivery of this `webhook-id` is being applied; retry later."})
def node_webhook(ctx: Ctx):
    raw = ctx.request.raw_body or b""
    verify(raw, ctx.request.headers)
    data = ctx.json()  # the one body parser: UTF-8, depth-bounded, 400 invalid_json otherwise
    if not isinstance(data, dict):
        raise InvalidJson("the body must be a JSON object")
    event = node_sync.NodeEvent.model_validate(data)
    outcome = node_sync.receive(Stores(event.tenant_id), NodeRepository(event.tenant_id), ctx.header("webhook-id"),
                                event)
    return json_response({"status": outcome}, 202 if outcome == "accepted" else 200)
