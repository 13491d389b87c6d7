"""Per-type rules and status moves of communications (contract §5, §15), without storage."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.communications import (
    Communication,
    apply_type_rules,
    move_status,
)
from chalicelib.domain.errors import Conflict, ValidationFailed

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def comm(type_="email", status="sent", **fields) -> Communication:
    return Communication(id="01J0000000000000000000000A", tenant_id="t1", client_id="c1", type=type_,
                         status=status, occurred_at=NOW, created_at=NOW, updated_at=NOW, **fields)


def fields_of(exc: ValidationFailed) -> set[str]:
    return {d["field"] for d in exc.details}


# --- apply_type_rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("type_, data, missing", [
    ("email", {}, {"subject", "body"}),
    ("email", {"subject": "Hi"}, {"body"}),
    ("email", {"body": "Hello"}, {"subject"}),
    ("meeting", {}, {"subject"}),
    ("note", {}, {"body"}),
    ("sms", {}, {"body"}),
    ("phone", {}, {"direction"}),
])
def test_required_fields_by_type_are_named_each(type_, data, missing):
    with pytest.raises(ValidationFailed) as info:
        apply_type_rules({"type": type_, **data})
    assert fields_of(info.value) == missing


def test_empty_strings_count_as_missing():
    with pytest.raises(ValidationFailed) as info:
        apply_type_rules({"type": "email", "subject": "", "body": ""})
    assert fields_of(info.value) == {"subject", "body"}


def test_phone_subject_defaults_to_phone_call():
    assert apply_type_rules({"type": "phone", "direction": "inbound"})["subject"] == "Phone Call"
    assert apply_type_rules({"type": "phone", "direction": "inbound", "subject": None})["subject"] == "Phone Call"
    assert apply_type_rules({"type": "phone", "direction": "outbound", "subject": "Budget"})["subject"] == "Budget"


def test_note_is_forced_outbound_and_sent():
    out = apply_type_rules({"type": "note", "body": "Internal remark"})
    assert (out["direction"], out["status"]) == ("outbound", "sent")


def test_note_sent_inbound_is_rejected_on_direction():
    with pytest.raises(ValidationFailed) as info:
        apply_type_rules({"type": "note", "body": "x", "direction": "inbound"})
    assert fields_of(info.value) == {"direction"}


def test_meeting_duration_is_computed_from_start_and_end():
    out = apply_type_rules({"type": "meeting", "subject": "Kick-off", "start_time": "09:30", "end_time": "10:45"})
    assert out["duration_minutes"] == 75


def test_meeting_without_both_times_keeps_given_duration():
    out = apply_type_rules({"type": "meeting", "subject": "Kick-off", "start_time": "09:30",
                            "duration_minutes": 20})
    assert out["duration_minutes"] == 20


def test_meeting_ending_before_it_starts_is_rejected_on_end_time():
    with pytest.raises(ValidationFailed) as info:
        apply_type_rules({"type": "meeting", "subject": "Kick-off", "start_time": "10:00", "end_time": "09:59"})
    assert fields_of(info.value) == {"end_time"}


def test_apply_type_rules_does_not_mutate_its_input():
    data = {"type": "phone", "direction": "outbound"}
    apply_type_rules(data)
    assert data == {"type": "phone", "direction": "outbound"}


# --- move_status ------------------------------------------------------------------------------------

def test_same_status_is_a_no_op():
    original = comm(status="sent", sent_at=NOW)
    assert move_status(original, "sent", LATER) == original


def test_email_moves_forward_and_the_server_stamps_each_step():
    delivered = move_status(comm(status="sent", sent_at=NOW), "delivered", LATER)
    assert (delivered.status, delivered.delivered_at, delivered.read_at, delivered.sent_at) == \
        ("delivered", LATER, None, NOW)
    assert delivered.updated_at == LATER
    read = move_status(delivered, "read", LATER + timedelta(minutes=5))
    assert (read.status, read.delivered_at, read.read_at) == ("read", LATER, LATER + timedelta(minutes=5))


def test_skipping_to_read_stamps_delivered_too_and_keeps_existing_stamps():
    read = move_status(comm("sms", status="sent", sent_at=NOW), "read", LATER)
    assert (read.sent_at, read.delivered_at, read.read_at) == (NOW, LATER, LATER)


@pytest.mark.parametrize("start, target", [("read", "sent"), ("read", "delivered"), ("delivered", "sent"),
                                           ("sent", "draft"), ("delivered", "draft")])
def test_moving_backwards_is_invalid_status(start, target):
    with pytest.raises(Conflict) as info:
        move_status(comm(status=start), target, LATER)
    assert info.value.code == "invalid_status"


@pytest.mark.parametrize("type_", ["phone", "meeting", "note"])
@pytest.mark.parametrize("target", ["delivered", "read"])
def test_delivered_and_read_only_exist_for_email_and_sms(type_, target):
    with pytest.raises(Conflict) as info:
        move_status(comm(type_, status="sent"), target, LATER)
    assert info.value.code == "invalid_status"


def test_a_failed_email_cannot_jump_to_delivered():
    with pytest.raises(Conflict) as info:
        move_status(comm(status="failed"), "delivered", LATER)
    assert info.value.code == "invalid_status"


def test_move_status_returns_a_copy():
    original = comm(status="sent", sent_at=NOW)
    move_status(original, "delivered", LATER)
    assert (original.status, original.delivered_at) == ("sent", None)
