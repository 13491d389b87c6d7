"""Node platform webhooks: Standard Webhooks signatures, then the event applied once per webhook id."""
from __future__ import annotations

from typing import Literal

from chalice import Blueprint
from standardwebhooks.webhooks import Webhook

from chalicelib import telemetry
from chalicelib.config import get_settings
from chalicelib.domain import node_cases
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.node_sync import NodeEvent
from chalicelib.handlers.errors import InvalidJson
from chalicelib.handlers.fields import Model
from chalicelib.handlers.routing import Ctx, api, json_response
from chalicelib.tables.stores import Stores

bp = Blueprint(__name__)
WEBHOOK_METRICS = {"processed": "WebhookProcessed", "duplicate": "WebhookDuplicate", "accepted": "WebhookHeld"}


class WebhookAnswer(Model):
    status: Literal["processed", "duplicate", "accepted"]


def verify(raw: bytes, headers: dict) -> str:
    """The webhook id, or 401 unless the body is signed with NODE_WEBHOOK_SECRET and the timestamp is within 5
    minutes (a signed delivery always has its id)."""
    secret = get_settings().node_webhook_secret
    if not secret:
        raise Unauthorized("webhooks are not configured (NODE_WEBHOOK_SECRET)")
    wanted = {k: headers.get(k) or "" for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        Webhook(secret).verify(raw, wanted, json_parse=False)
    except Exception:  # bad signature, stale timestamp, malformed headers or body: all the same to a forger
        raise Unauthorized("the webhook signature is missing, wrong or too old") from None
    return wanted["webhook-id"]


@api(bp, "POST", "/v1/webhooks/node", summary="Receive a Node platform event (Standard Webhooks signed)",
     need="public", tag="webhooks", body=NodeEvent, response=WebhookAnswer,
     also={202: "Accepted: an unknown type (ignored) or a Node client not linked yet (held for it).",
           409: "`webhook_in_progress`: a delivery of this `webhook-id` is being applied; retry later."})
def node_webhook(ctx: Ctx):
    webhook_id = verify(ctx.request.raw_body or b"", ctx.request.headers)
    data = ctx.json()  # the one body parser: UTF-8, depth-bounded, 400 invalid_json otherwise
    if not isinstance(data, dict):
        raise InvalidJson("the body must be a JSON object")
    event = NodeEvent.model_validate(data)
    telemetry.note(tenant=event.tenant_id, principal="node", webhook_id=webhook_id, event_type=event.type)
    outcome = node_cases.receive(Stores(event.tenant_id), webhook_id, event)
    telemetry.note(outcome=outcome)
    telemetry.count(WEBHOOK_METRICS[outcome])
    return json_response({"status": outcome}, 202 if outcome == "accepted" else 200)
