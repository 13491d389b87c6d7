"""Which stream records ask for which effects: recounts only when a count can change."""
from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.stream_cases import effects_of, plan
from chalicelib.tables import keys
from chalicelib.tables.items import CommunicationItem, FacetEntry
from chalicelib.tables.streams import to_change
from chalicelib.tables.work_items import CategoryItem

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _entry(facet, value, live=True):
    return FacetEntry(keys.facet_pk("t1", facet, value), "c1", client_id="c1", live=live, search="", created_at="",
                      s_name="", s_created="", s_health="")


def _change(name, old, new, kind="facet"):
    return to_change(name, kind, old, new, "1")


def test_a_category_entry_appearing_disappearing_or_flipping_live_asks_for_a_recount():
    expected = [("category_count", "t1", "cat1")]
    assert effects_of(_change("INSERT", None, _entry("category", "cat1"))) == expected
    assert effects_of(_change("REMOVE", _entry("category", "cat1"), None)) == expected
    assert effects_of(_change("MODIFY", _entry("category", "cat1"), _entry("category", "cat1", False))) == expected


def test_an_entry_rewritten_with_the_same_live_flag_asks_for_nothing():
    assert effects_of(_change("MODIFY", _entry("category", "cat1"), _entry("category", "cat1"))) == []


def test_segment_entries_recount_their_segment_and_other_facets_nothing():
    assert effects_of(_change("INSERT", None, _entry("segment", "s1"))) == [("segment_count", "t1", "s1")]
    assert effects_of(_change("INSERT", None, _entry("tag", "vip"))) == []


def test_only_the_moment_a_category_is_deleted_takes_it_off_clients():
    def cat(deleted):
        return CategoryItem(keys.categories_pk("t1"), keys.category_sk("k"), tenant_id="t1", id="k", name="K",
                            slug="k", is_system=False, is_active=True, is_public=True, sort_order=0,
                            created_at=NOW, updated_at=NOW, deleted_at=NOW if deleted else None)

    assert effects_of(_change("MODIFY", cat(False), cat(True), "category")) == [("category_deleted", "t1", "k")]
    assert effects_of(_change("MODIFY", cat(True), cat(True), "category")) == []


def test_facet_keys_parse_back_to_tenant_facet_and_value():
    assert keys.parse_facet_pk(keys.facet_pk("t1", "category", "01HX")) == ("t1", "category", "01HX")
    assert keys.parse_facet_pk(keys.client_pk("t1", "c1")) is None


def _communication(comm_id, client_id="c1", tenant="t1"):
    return to_change("INSERT", "communication", None, CommunicationItem(
        keys.client_pk(tenant, client_id), keys.comm_sk(comm_id), tenant_id=tenant, id=comm_id, client_id=client_id,
        type="note", direction="outbound", status="sent", requires_followup=False, occurred_at=NOW, created_at=NOW,
        updated_at=NOW), comm_id)


def test_a_change_carries_the_records_fields_and_tenant_never_its_keys():
    change = _communication("m1")
    assert change.tenant_id == "t1" and change.new["client_id"] == "c1"
    assert not {"pk", "sk", "kind", "gsi1pk"} & change.new.keys()
    facet = to_change("INSERT", "facet", None, _entry("segment", "s1"), "1")
    assert (facet.tenant_id, facet.facet) == ("t1", ("segment", "s1"))


def test_a_batch_asks_for_each_effect_once_naming_every_record_that_asked():
    planned = plan([_communication("m1"), _communication("m2"), _communication("m3", tenant="t2")])
    assert planned.effects[("communications", "t1", "c1")] == ["m1", "m2"]
    assert planned.effects[("rescore", "t2", "c1")] == ["m3"]
    assert [seq for _, seq in planned.timeline["t1"]] == ["m1", "m2"] and list(planned.timeline) == ["t1", "t2"]


def test_index_only_records_the_template_filters_out_ask_for_nothing_and_are_skipped_locally():
    from chalicelib.domain import activity
    from chalicelib.tables.items import DayCount, HeartbeatItem, SearchEntry
    from chalicelib.tables.streams import INDEX_ONLY_KINDS, decode_record

    items = [SearchEntry(keys.search_pk("t1", "client", "har"), "c1"), DayCount(keys.created_counts_pk("t1"),
                                                                             keys.day_count_sk("2026-11-26", 3), n=1),
             HeartbeatItem(keys.HEARTBEAT_PK, "stream", at=NOW)]
    kinds = [item.serialize()["kind"]["S"] for item in items]
    assert sorted(kinds) == sorted(INDEX_ONLY_KINDS)
    for item, kind in zip(items, kinds, strict=True):
        for name, old, new in (("INSERT", None, item), ("REMOVE", item, None)):
            change = _change(name, old, new, kind=kind)
            assert effects_of(change) == [] and activity.entry(kind, change.old, change.new, "1", NOW) is None
        record = {"eventName": "INSERT", "dynamodb": {"NewImage": item.serialize(), "SequenceNumber": "9"}}
        assert decode_record(record) is None
