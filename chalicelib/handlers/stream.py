"""The table stream handler: turns each batch of records into idempotent effects (recounts, segment following)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalicelib.domain import activity, category_cases, client_cases, scoring_cases, segment_cases
from chalicelib.domain.response_times import response_times
from chalicelib.domain.threads import thread_stats
from chalicelib.domain.values import utcnow
from chalicelib.tables import keys
from chalicelib.tables.activity import ActivityRepository
from chalicelib.tables.stores import Stores
from chalicelib.tables.streams import Change, decode_record

log = logging.getLogger(__name__)

Effect = tuple[str, str, str]  # (what, tenant id, subject id)


def handle_stream_batch(records: list[Any]) -> dict:
    """Apply each record's effects once per batch; failed records are reported so only they are retried.

    Every effect recomputes from stored state (a recount, a re-evaluation), so a batch delivered twice, out of
    order, or partly retried leaves the same figures.
    """
    failures: list[dict] = []
    effects: dict[Effect, list[str]] = {}
    timeline: dict[str, list[tuple[dict, str]]] = {}
    for record in records:
        try:
            change = decode_record(record)
        except Exception:
            log.exception("stream record %s could not be decoded", record.sequence_number)
            failures.append({"itemIdentifier": record.sequence_number})
            continue
        if change is None:
            continue
        for effect in effects_of(change):
            effects.setdefault(effect, []).append(change.sequence_number)
        logged = activity.entry(change.kind, _image(change.old), _image(change.new), change.sequence_number, utcnow())
        if logged is not None:
            timeline.setdefault((change.new or change.old).tenant_id, []).append((logged, change.sequence_number))
    for tenant_id, logged in timeline.items():
        try:
            ActivityRepository(tenant_id).write([e for e, _ in logged])
        except Exception:
            log.exception("timeline entries of tenant %s failed", tenant_id)
            failures.extend({"itemIdentifier": n} for _, n in logged)
    stores: dict[str, Stores] = {}
    for (what, tenant_id, subject), sequence_numbers in effects.items():
        try:
            EFFECTS[what](stores.setdefault(tenant_id, Stores(tenant_id)), subject)
        except Exception:
            log.exception("stream effect %s of %s/%s failed", what, tenant_id, subject)
            failures.extend({"itemIdentifier": n} for n in sequence_numbers)
    return {"batchItemFailures": failures}


def _image(item: Any) -> dict | None:
    return None if item is None else dict(item.attribute_values)


def effects_of(change: Change) -> list[Effect]:
    """What a changed item asks for; items of other kinds ask for nothing."""
    item = change.new or change.old
    if change.kind == "communication":
        return [("communications", item.tenant_id, item.client_id), ("rescore", item.tenant_id, item.client_id)]
    if change.kind in SCORE_INPUTS:
        return [("rescore", item.tenant_id, item.client_id)]
    if change.kind == "client" and change.new is not None:
        user_change = change.old is None or change.old.version != change.new.version
        return [("client", item.tenant_id, item.id)] + ([("rescore", item.tenant_id, item.id)] if user_change else [])
    if change.kind == "facet":
        parsed = keys.parse_facet_pk(item.pk)
        live_changed = change.old is None or change.new is None or change.old.live != change.new.live
        if parsed and parsed[1] in ("category", "segment") and live_changed:
            return [(parsed[1] + "_count", parsed[0], parsed[2])]
    if change.kind == "category" and change.new is not None and change.new.deleted_at is not None \
            and (change.old is None or change.old.deleted_at is None):
        return [("category_deleted", item.tenant_id, item.id)]
    return []


def recount_client_communications(stores: Stores, client_id: str) -> None:
    """Recompute a client's response times and thread counts from its communications; write what changed."""
    comms = stores.communications.of_client(client_id)
    times, average = response_times(comms)
    for comm in comms:
        if comm.id in times and comm.response_time_minutes != times[comm.id]:
            stores.communications.set_response_time(comm, times[comm.id])
    client_cases.update_derived(stores.clients, stores.settings, client_id,
                                lambda client: {"avg_response_time_minutes": average})
    stats = thread_stats(comms)
    for thread in stores.threads.of_client(client_id):
        wanted = stats.get(thread.id, (0, None, None))
        if (thread.messages_count, thread.last_activity_at, thread.preview) != wanted:
            stores.threads.set_stats(thread, wanted)


SCORE_INPUTS = ("contact", "project", "invoice", "feedback")  # with communications and the client itself

EFFECTS: dict[str, Callable[[Stores, str], Any]] = {
    "rescore": scoring_cases.rescore,
    "communications": recount_client_communications,
    "client": segment_cases.follow_client,
    "category_count": category_cases.recount,
    "segment_count": segment_cases.recount,
    "category_deleted": client_cases.remove_deleted_category,
}
