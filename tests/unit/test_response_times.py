"""Response-time rule: the next real answer, whole minutes, thread-aware, notes and drafts never count."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain.communications import Communication
from chalicelib.domain.response_times import response_times

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def comm(cid, minutes, direction, type_="email", thread=None, status=None, deleted=False):
    at = T0 + timedelta(minutes=minutes)
    return Communication(id=cid, tenant_id="t", client_id="c", type=type_, direction=direction,
                         status=status or ("delivered" if direction == "inbound" else "sent"), thread_id=thread,
                         occurred_at=at, created_at=at, updated_at=at, deleted_at=at if deleted else None)


def test_an_inbound_item_is_answered_by_the_next_outbound_one_in_whole_minutes():
    times, average = response_times([comm("a", 0, "inbound"), comm("b", 90.9, "outbound")])
    assert times == {"a": 90} and average == 90


def test_notes_and_drafts_are_not_answers():
    items = [comm("a", 0, "inbound"), comm("n", 5, "outbound", type_="note"),
             comm("d", 6, "outbound", status="draft"), comm("b", 30, "outbound", type_="phone")]
    assert response_times(items) == ({"a": 30}, 30)


def test_a_threaded_inbound_item_waits_for_an_answer_in_its_thread():
    items = [comm("a", 0, "inbound", thread="t1"), comm("x", 10, "outbound", thread="t2"),
             comm("b", 45, "outbound", thread="t1")]
    assert response_times(items)[0] == {"a": 45}


def test_unanswered_items_are_null_and_the_average_is_null_until_one_is_answered():
    assert response_times([comm("a", 0, "inbound")]) == ({"a": None}, None)
    assert response_times([]) == ({}, None)


def test_the_average_is_the_mean_of_answered_items_rounded_down():
    items = [comm("a", 0, "inbound"), comm("b", 10, "outbound"), comm("c", 20, "inbound"),
             comm("d", 41, "outbound"), comm("e", 50, "inbound")]
    times, average = response_times(items)
    assert times == {"a": 10, "c": 21, "e": None} and average == 15


def test_a_deleted_answer_no_longer_counts_and_order_of_input_does_not_matter():
    items = [comm("b", 10, "outbound", deleted=True), comm("a", 0, "inbound"), comm("c", 25, "outbound")]
    assert response_times(items) == ({"a": 25}, 25)
    assert response_times(list(reversed(items))) == ({"a": 25}, 25)
