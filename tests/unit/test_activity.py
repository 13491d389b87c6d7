"""Timeline entries from before/after images: actions, changes, actors, and silence on derived figures."""
from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.activity import entry

NOW = datetime(2026, 11, 26, tzinfo=UTC)
CLIENT = {"id": "c1", "name": "Acme", "status": "active", "health_score": 70, "version": 1, "rev": 1,
          "created_by": "u1", "updated_at": NOW}


def test_a_creation_names_its_creator_and_no_field_changes():
    made = entry("client", None, CLIENT, "seq-1", NOW)
    assert (made["action"], made["actor"], made["changes"], made["entity_id"]) == ("created", "u1", None, "c1")


def test_an_update_lists_each_changed_field_from_and_to_with_its_author():
    after = {**CLIENT, "name": "Acme Events", "updated_by": "u2", "version": 2}
    made = entry("client", CLIENT, after, "seq-2", NOW)
    assert made["action"] == "updated" and made["actor"] == "u2"
    assert made["changes"] == {"name": {"from": "Acme", "to": "Acme Events"}}


def test_derived_figures_alone_leave_no_entry():
    rescored = {**CLIENT, "health_score": 41, "risk_level": "medium", "rev": 2}
    assert entry("client", CLIENT, rescored, "seq-3", NOW) is None


def test_archive_restore_and_soft_delete_are_named_as_such():
    archived = {**CLIENT, "status": "archived", "archived_at": NOW}
    assert entry("client", CLIENT, archived, "s", NOW)["action"] == "archived"
    assert entry("client", archived, CLIENT, "s", NOW)["action"] == "restored"
    contact = {"id": "k1", "client_id": "c1", "full_name": "Pat"}
    assert entry("contact", contact, {**contact, "deleted_at": NOW}, "s", NOW)["action"] == "deleted"
    assert entry("contact", contact, None, "s", NOW)["action"] == "deleted"


def test_children_belong_to_their_client_and_links_name_the_related_client():
    link = {"client_id": "c1", "related_id": "c2", "role": "venue"}
    made = entry("association", None, link, "s", NOW)
    assert (made["client_id"], made["entity_id"], made["entity_type"]) == ("c1", "c2", "association")
    assert entry("facet", None, {"client_id": "c1"}, "s", NOW) is None
