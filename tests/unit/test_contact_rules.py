"""Pure contact rules: name splitting, numbers, badges, PATCH rules, deletion, portal access and invitations."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import contacts
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.handlers.errors import status_of

NOW = datetime(2025, 3, 4, 9, 15, 32, tzinfo=UTC)
NUMBER = re.compile(r"^CON-(\d{4})-(\d{6})[0-9a-f]{4}$")


def make(data=None, *, first=False, contact_id="01JCONTACT", now=NOW, **fields) -> contacts.Contact:
    contact = contacts.new_contact({"full_name": "Jane Smith", "email": "jane@example.com", **(data or {})},
                                   tenant_id="t1", contact_id=contact_id, client_id="01JCLIENT", now=now,
                                   first_of_client=first)
    return contact.model_copy(update=fields) if fields else contact


def conflict_code(call) -> str:
    with pytest.raises(Conflict) as info:
        call()
    assert status_of(info.value) == 409
    return info.value.code


# --- name splitting --------------------------------------------------------------------------------

@pytest.mark.parametrize("full_name, first, last", [
    ("Jane Smith", "Jane", "Smith"),
    ("Dr. Jane Smith", "Jane", "Smith"),
    ("Sir Elton John", "Elton", "John"),
    ("Jan van der Berg", "Jan", "van der Berg"),
    ("Juan de la Vega", "Juan", "de la Vega"),
    ("Martin Luther King Jr.", "Martin", "King"),
    ("Ludwig van Beethoven III", "Ludwig", "van Beethoven"),
    ("John Ronald Reuel Tolkien", "John", "Tolkien"),
    ("Smith, John", "John", "Smith"),
    ("  Mary   Poppins  ", "Mary", "Poppins"),
])
def test_full_name_splits_into_first_and_last_understanding_titles_particles_and_suffixes(full_name, first, last):
    assert contacts.split_name(full_name) == (first, last)


def test_a_single_name_is_a_first_name_with_no_last_name():
    assert contacts.split_name("Cher") == ("Cher", None)


def test_a_new_contact_gets_first_and_last_name_from_its_full_name():
    contact = make({"full_name": "Dr. Pieter van der Berg"})
    assert (contact.first_name, contact.last_name) == ("Pieter", "van der Berg")


def test_first_and_last_name_given_on_create_are_kept():
    contact = make({"full_name": "Bob Smith", "first_name": "Robert", "last_name": "Smith-Jones"})
    assert (contact.first_name, contact.last_name) == ("Robert", "Smith-Jones")


def test_contact_number_is_con_year_time_of_day_and_four_lowercase_hex():
    match = NUMBER.match(make().contact_number)
    assert match and match.groups() == ("2025", "091532")


# --- primary on create, badges ---------------------------------------------------------------------

def test_the_first_contact_of_a_client_is_primary_and_later_ones_are_not():
    assert make(first=True).is_primary is True
    assert make(first=False).is_primary is False


def test_a_new_contact_has_no_badges_until_flagged():
    assert make().badges == []


def test_badges_show_each_flag_the_contact_carries():
    contact = make(first=True, synced_from_node=True, portal_access=True, is_billing_contact=True,
                   is_technical_contact=True)
    assert sorted(contact.badges) == sorted(["primary", "node_user", "portal", "billing", "technical"])
    assert make(is_billing_contact=True).badges == ["billing"]
    assert make(is_technical_contact=True).badges == ["technical"]
    assert make(synced_from_node=True).badges == ["node_user"]


def test_the_public_view_has_badges_and_utc_z_timestamps_and_no_secrets():
    contact, _ = contacts.issue_invitation(make(portal_access=True), NOW)
    public = contact.public()
    assert public["badges"] == ["portal"]
    assert public["created_at"].endswith("Z") and public["portal_invited_at"].endswith("Z")
    assert not {"invitation_hash", "invitation_expires_at", "tenant_id", "deleted_at"} & public.keys()


# --- apply_changes (PATCH) -------------------------------------------------------------------------

LATER = NOW + timedelta(minutes=5)


def test_a_core_contact_may_change_every_writable_field():
    contact = make()
    changed = contacts.apply_changes(contact, {"full_name": "Janet Smythe", "email": "janet@example.com",
                                               "phone": "+31 20 123", "job_title": "Technical Director",
                                               "department": "Ops"}, LATER)
    assert (changed.full_name, changed.email, changed.phone) == ("Janet Smythe", "janet@example.com", "+31 20 123")
    assert (changed.job_title, changed.department, changed.updated_at) == ("Technical Director", "Ops", LATER)


def test_renaming_resplits_first_and_last_name():
    changed = contacts.apply_changes(make(), {"full_name": "Anna de Vries"}, LATER)
    assert (changed.first_name, changed.last_name) == ("Anna", "de Vries")


def test_a_patch_changes_only_the_fields_it_names():
    contact = make({"phone": "+44 1", "notes": "keep me"})
    changed = contacts.apply_changes(contact, {"job_title": "Producer"}, LATER)
    assert (changed.phone, changed.notes, changed.full_name) == ("+44 1", "keep me", "Jane Smith")


@pytest.mark.parametrize("field, value", [("full_name", "Someone Else"), ("email", "other@example.com"),
                                          ("phone", "+1 555"), ("job_title", "CEO")])
def test_node_synced_identity_fields_are_read_only(field, value):
    node = make(synced_from_node=True, node_user_id="7c9e6679-7425-40de-944b-e07fc1f90ae7")
    assert conflict_code(lambda: contacts.apply_changes(node, {field: value}, LATER)) == "node_synced_read_only"


def test_node_synced_read_only_conflict_names_the_field():
    node = make(synced_from_node=True)
    with pytest.raises(Conflict) as info:
        contacts.apply_changes(node, {"email": "x@example.com", "notes": "fine"}, LATER)
    assert [d["field"] for d in info.value.details] == ["email"]


def test_node_synced_contacts_keep_flags_and_other_fields_editable():
    node = make(synced_from_node=True)
    changed = contacts.apply_changes(node, {"is_billing_contact": True, "is_technical_contact": True,
                                            "is_primary": True, "mobile": "+31 6", "notes": "on site",
                                            "department": "AV", "position": "Lead"}, LATER)
    assert changed.is_billing_contact and changed.is_technical_contact
    assert (changed.mobile, changed.notes, changed.department, changed.position) == ("+31 6", "on site", "AV", "Lead")


def test_sending_a_node_synced_field_unchanged_is_not_a_conflict():
    node = make(synced_from_node=True)
    changed = contacts.apply_changes(node, {"full_name": node.full_name, "email": node.email, "notes": "n"}, LATER)
    assert changed.notes == "n"


def test_unflagging_the_primary_is_a_primary_contact_conflict():
    primary = make(first=True)
    assert conflict_code(lambda: contacts.apply_changes(primary, {"is_primary": False}, LATER)) == "primary_contact"


def test_required_fields_cannot_be_set_to_null():
    for field in ("full_name", "email"):
        with pytest.raises(ValidationFailed) as info:
            contacts.apply_changes(make(), {field: None}, LATER)
        assert [d["field"] for d in info.value.details] == [field]


# --- deletion --------------------------------------------------------------------------------------

def test_an_ordinary_contact_without_open_projects_can_be_deleted():
    contacts.ensure_can_delete(make(), has_open_project=False)


def test_the_primary_contact_cannot_be_deleted():
    assert conflict_code(lambda: contacts.ensure_can_delete(make(first=True), False)) == "primary_contact"


def test_a_contact_on_an_open_project_cannot_be_deleted():
    assert conflict_code(lambda: contacts.ensure_can_delete(make(), True)) == "contact_on_active_project"


# --- portal access ---------------------------------------------------------------------------------

def test_portal_access_needs_the_tenant_portal_on():
    assert conflict_code(lambda: contacts.ensure_portal_allowed(make(), portal_enabled=False)) == "portal_disabled"


def test_portal_access_is_allowed_for_an_active_contact_with_a_valid_email_when_the_portal_is_on():
    contacts.ensure_portal_allowed(make(), portal_enabled=True)


def test_portal_access_is_refused_for_a_deleted_contact_or_an_invalid_email():
    with pytest.raises(Conflict):
        contacts.ensure_portal_allowed(make(deleted_at=NOW), portal_enabled=True)
    with pytest.raises(Conflict):
        contacts.ensure_portal_allowed(make(email="not-an-email"), portal_enabled=True)


# --- invitations -----------------------------------------------------------------------------------

def invited(now=NOW) -> tuple[contacts.Contact, str]:
    return contacts.issue_invitation(make(portal_access=True), now)


def test_issuing_an_invitation_stores_only_a_hash_of_the_secret():
    contact, secret = invited()
    assert secret and contact.invitation_hash and contact.invitation_hash != secret
    assert secret not in repr(contact.model_dump())
    assert contact.portal_invited_at == NOW


def test_the_latest_invitation_is_valid():
    contact, secret = invited()
    assert contacts.invitation_valid(contact, secret, NOW + timedelta(minutes=1)) is True


def test_a_wrong_secret_is_not_valid():
    contact, secret = invited()
    assert contacts.invitation_valid(contact, secret + "x", NOW) is False


def test_re_issuing_voids_the_earlier_invitation():
    contact, first = invited()
    contact, second = contacts.issue_invitation(contact, NOW + timedelta(hours=1))
    assert first != second
    assert contacts.invitation_valid(contact, first, NOW + timedelta(hours=2)) is False
    assert contacts.invitation_valid(contact, second, NOW + timedelta(hours=2)) is True


def test_an_invitation_expires_after_seven_days():
    contact, secret = invited()
    assert contacts.invitation_valid(contact, secret, NOW + timedelta(days=7) - timedelta(seconds=1)) is True
    assert contacts.invitation_valid(contact, secret, NOW + timedelta(days=7)) is False
    assert contacts.invitation_valid(contact, secret, NOW + timedelta(days=30)) is False


def test_an_invitation_is_not_valid_once_portal_access_is_off():
    contact, secret = invited()
    off = contact.model_copy(update={"portal_access": False})
    assert contacts.invitation_valid(off, secret, NOW) is False


def test_an_invitation_is_not_valid_for_a_deleted_contact():
    contact, secret = invited()
    assert contacts.invitation_valid(contact.model_copy(update={"deleted_at": NOW}), secret, NOW) is False


def test_a_contact_never_invited_has_no_valid_invitation():
    assert contacts.invitation_valid(make(portal_access=True), "anything", NOW) is False


def test_the_link_token_round_trips_to_tenant_client_contact_and_secret():
    contact, secret = invited()
    token = contacts.invitation_token("t1", contact.client_id, contact.id, secret)
    assert contacts.parse_invitation_token(token) == ("t1", contact.client_id, contact.id, secret)
    assert re.fullmatch(r"[A-Za-z0-9_\-.]+", token), "the token must survive a URL query unescaped"


@pytest.mark.parametrize("garbage", [
    "", "garbage", ".", "no-dot-at-all", "!!!!.secret", "dGVuYW50.secret",  # one part only
    "dDEKYwpr.",  # tenant, client, contact but no secret
    "dDEKCms.secret",  # an empty client id
    "\u00e9\u00e9.secret", "dDEKYwpr\u00ff.secret",
])
def test_a_garbage_token_parses_to_none(garbage):
    assert contacts.parse_invitation_token(garbage) is None
