"""Response time: minutes from an inbound communication to the client's next real answer."""
from __future__ import annotations

from chalicelib.domain.communications import Communication


def response_times(comms: list[Communication]) -> tuple[dict[str, int | None], int | None]:
    """Each inbound item's response time and the client's average, recomputed from all its communications.

    An answer is the next outbound communication that is not a note (in the same thread when the inbound one
    is threaded). Whole minutes, rounded down; the average is null until one inbound item is answered.
    Recomputing from the stored items makes the result the same however often or in what order the stream
    delivers the changes.
    """
    live = sorted((c for c in comms if c.deleted_at is None), key=lambda c: (c.occurred_at, c.id))
    answers = [c for c in live if c.direction == "outbound" and c.type != "note" and c.status != "draft"]
    times: dict[str, int | None] = {}
    for item in live:
        if item.direction != "inbound":
            continue
        reply = next((a for a in answers if a.occurred_at > item.occurred_at
                      and (item.thread_id is None or a.thread_id == item.thread_id)), None)
        times[item.id] = int((reply.occurred_at - item.occurred_at).total_seconds() // 60) if reply else None
    answered = [t for t in times.values() if t is not None]
    return times, (sum(answered) // len(answered) if answered else None)
