"""The table stream's use cases: what each changed record asks for, its timeline entry, and the recounts it runs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import (
    activity,
    category_cases,
    client_cases,
    duplicate_cases,
    scoring_cases,
    segment_cases,
)
from chalicelib.domain.clients import Client
from chalicelib.domain.ports import Stores
from chalicelib.domain.response_times import response_times
from chalicelib.domain.threads import thread_stats
from chalicelib.domain.values import utcnow

Effect = tuple[str, str, str]  # (what, tenant id, subject id)
Image = dict[str, Any]  # a record's stored fields by name (keys and storage bookkeeping left out)


@dataclass(frozen=True)
class Change:
    """One record of the table as the stream tells it: its kind and tenant, its fields before and after."""

    event_name: str  # INSERT | MODIFY | REMOVE
    kind: str
    tenant_id: str | None
    old: Image | None
    new: Image | None
    sequence_number: str
    facet: tuple[str, str] | None = None  # (facet, value) of a facet entry, (name, value) of a lookup key


@dataclass
class Plan:
    """What a batch of changes asks for: each effect once (with the records asking), each tenant's timeline."""

    effects: dict[Effect, list[str]] = field(default_factory=dict)  # effect -> sequence numbers
    timeline: dict[str, list[tuple[dict[str, Any], str]]] = field(default_factory=dict)  # tenant -> (entry, seq)


SCORE_INPUTS = ("contact", "project", "invoice", "feedback")  # with communications and the client itself
FOLLOW = "client"  # the segments follow a client (segment_cases.follow_client, handed the client by `apply`)


def effects_of(change: Change) -> list[Effect]:
    """What a changed record asks for; records of other kinds ask for nothing."""
    image, old, new, tenant = change.new or change.old, change.old, change.new, change.tenant_id
    if image is None or tenant is None:
        return []
    if change.kind == "communication":
        return [("communications", tenant, image["client_id"]), ("rescore", tenant, image["client_id"])]
    if change.kind in SCORE_INPUTS:
        return [("rescore", tenant, image["client_id"])]
    if change.kind == "client" and new is not None:
        user_change = old is None or old.get("version") != new.get("version")
        return ([("rescore", tenant, image["id"])] if user_change else []) + [(FOLLOW, tenant, image["id"])]
    if change.kind == "facet" and change.facet:
        facet, value = change.facet
        live_changed = old is None or new is None or old.get("live") != new.get("live")
        if facet in ("category", "segment") and live_changed:
            return [(facet + "_count", tenant, value)]
    if change.kind == "client_key" and change.facet and (old or {}).get("client_ids") != (new or {}).get("client_ids"):
        return [("duplicate_key", tenant, "=".join(change.facet))]
    if change.kind == "category" and new is not None and new.get("deleted_at") is not None \
            and (old is None or old.get("deleted_at") is None):
        return [("category_deleted", tenant, image["id"])]
    return []


def plan(changes: list[Change]) -> Plan:
    """Each change's effects (once per batch) and timeline entry, in the order the stream delivered them, except
    that the segments follow their clients last: after the rescores, whose saved clients they take (`apply`)."""
    planned = Plan()
    for change in changes:
        for effect in effects_of(change):
            planned.effects.setdefault(effect, []).append(change.sequence_number)
        logged = activity.entry(change.kind, change.old, change.new, change.sequence_number, utcnow())
        if logged is not None and change.tenant_id is not None:
            planned.timeline.setdefault(change.tenant_id, []).append((logged, change.sequence_number))
    planned.effects = dict(sorted(planned.effects.items(), key=lambda asked: asked[0][0] == FOLLOW))
    return planned


def apply(stores: Stores, what: str, subject: str, clients: dict[str, Client]) -> None:
    """Apply one effect of a batch on one tenant's `stores`: FOLLOW or one of EFFECTS. `clients` is the batch's
    hand-over: each client as an earlier effect read or saved it (a rescore answers it), which the segments'
    following takes instead of reading the client again. Each save kept its revision condition (a race lost is read
    again and retried), so what is handed over is what is stored."""
    if what == FOLLOW:
        segment_cases.follow_client(stores, subject, clients.get(subject))
        return
    answer = EFFECTS[what](stores, subject)
    if isinstance(answer, Client):
        clients[answer.id] = answer
    elif what in CHANGES_CLIENTS:
        clients.clear()  # it changed clients without answering them: they are read again


def record_timeline(stores: Stores, entries: list[dict[str, Any]]) -> None:
    """Write timeline entries (a redelivered entry rewrites itself: its key is its stream event)."""
    stores.activity.write(entries)


def recount_client_communications(stores: Stores, client_id: str) -> Client:
    """Recompute a client's response times and thread counts from its communications; write what changed. Answers
    the client as saved."""
    comms = stores.communications.of_client(client_id)
    times, average = response_times(comms)
    for comm in comms:
        if comm.id in times and comm.response_time_minutes != times[comm.id]:
            stores.communications.set_response_time(comm, times[comm.id])
    client = client_cases.update_derived(stores, client_id, lambda client: {"avg_response_time_minutes": average})
    stats = thread_stats(comms)
    for thread in stores.threads.of_client(client_id):
        wanted = stats.get(thread.id, (0, None, None))
        if (thread.messages_count, thread.last_activity_at, thread.preview) != wanted:
            stores.threads.set_stats(thread, wanted)
    return client


# Every effect recomputes from stored state (a recount, a re-evaluation): applied twice, it changes nothing more.
EFFECTS: dict[str, Callable[[Stores, str], Any]] = {
    "rescore": scoring_cases.rescore,
    "communications": recount_client_communications,
    "category_count": category_cases.recount,
    "segment_count": segment_cases.recount,
    "category_deleted": client_cases.remove_deleted_category,
    "duplicate_key": duplicate_cases.sync_key,
}
CHANGES_CLIENTS = frozenset({"category_deleted"})  # effects that write clients without answering them
