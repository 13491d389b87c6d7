"""Every key string of the single table: the tenant leads each partition, sort keys order as the list needs."""
from __future__ import annotations

import pytest

from chalicelib.tables import keys


def test_client_partition_is_led_by_the_tenant():
    assert keys.client_pk("t1", "01ABC") == "T#t1#CLIENT#01ABC"


def test_client_number_reservation_is_led_by_the_tenant():
    assert keys.client_number_pk("t1", "CLT-2025-120000abcd") == "T#t1#CLIENTNO#CLT-2025-120000abcd"


def test_facet_partition_names_facet_and_value():
    assert keys.facet_pk("t1", "status", "active") == "T#t1#CLIX#status=active"


def test_settings_and_custom_fields_share_the_tenant_settings_partition():
    assert keys.settings_pk("t1") == "T#t1#SETTINGS"
    assert keys.settings_sk("client") == "S#client"
    assert keys.custom_field_sk("shoe_size") == "CF#shoe_size"
    assert keys.custom_field_sk("shoe_size").startswith(keys.CUSTOM_FIELD_PREFIX)


def test_idempotency_key_is_scoped_to_the_tenant():
    assert keys.idempotency_pk("t1", "abc") == "T#t1#IDEM#abc"
    assert keys.idempotency_pk("t1", "abc") != keys.idempotency_pk("t2", "abc")


@pytest.mark.parametrize("build", [
    lambda t: keys.client_pk(t, "c"), lambda t: keys.client_number_pk(t, "n"),
    lambda t: keys.facet_pk(t, "live", "1"), lambda t: keys.settings_pk(t), lambda t: keys.idempotency_pk(t, "k"),
])
def test_every_partition_key_starts_with_the_tenant(build):
    assert build("acme").startswith("T#acme#")


@pytest.mark.parametrize("tenant", ["", "a#b", "#"])
def test_tenant_ids_that_could_reach_another_tenants_keys_are_refused(tenant):
    with pytest.raises(ValueError):
        keys.client_pk(tenant, "c")


def test_a_tenant_whose_id_prefixes_another_cannot_share_its_partitions():
    assert not keys.client_pk("t12", "x").startswith("T#t1#")
    assert keys.facet_pk("t1", "live", "1") != keys.facet_pk("t12", "live", "1")


def test_sort_keys_start_with_the_sorted_value_and_end_with_the_client_id():
    for key in (keys.name_sort("acme", "01A"), keys.created_sort("2025-01-02T03:04:05.000Z", "01A"),
                keys.health_sort(70, "acme", "01A")):
        assert key.endswith("01A")
    assert keys.name_sort("acme", "01A").startswith("acme")
    assert keys.created_sort("2025-01-02T03:04:05.000Z", "01A").startswith("2025-01-02T03:04:05.000Z")
    assert keys.health_sort(5, "acme", "01A").startswith("005")


def test_equal_names_stay_distinct_and_order_by_id():
    assert keys.name_sort("acme", "01A") < keys.name_sort("acme", "01B")


def test_health_sort_orders_scores_numerically_as_strings():
    scores = [100, 5, 70, 0, 9, 10, 99]
    ordered = sorted(scores, key=lambda s: keys.health_sort(s, "x", "id"))
    assert ordered == sorted(scores)


def test_health_sort_breaks_ties_by_name():
    assert keys.health_sort(70, "alpha", "9") < keys.health_sort(70, "beta", "1")


def test_created_sort_orders_by_time_then_id():
    early = keys.created_sort("2025-01-01T00:00:00.000Z", "ZZZ")
    late = keys.created_sort("2025-01-01T00:00:00.001Z", "AAA")
    assert early < late


def test_name_sort_puts_a_name_before_longer_names_it_prefixes():
    names = ["acme corp", "acme", "acme-labs", "acme!"]
    ordered = sorted(names, key=lambda n: keys.name_sort(n, "01ZZZ"))
    assert ordered[0] == "acme"
    assert ordered == sorted(names)


def test_health_ties_order_a_name_before_longer_names_it_prefixes():
    assert keys.health_sort(70, "acme", "01Z") < keys.health_sort(70, "acme corp", "01A")


def test_the_tenant_directory_cannot_collide_with_any_tenant_partition():
    assert not keys.TENANT_DIRECTORY_PK.startswith("T#")


def test_counter_shards_are_distinct_and_never_collide_with_client_entries():
    shards = {keys.count_sk(n) for n in range(keys.COUNT_SHARDS)}
    assert len(shards) == keys.COUNT_SHARDS > 1
    assert all(sk.startswith("#") for sk in shards)  # facet entries are keyed by ULIDs, which never start so


def test_a_node_user_is_reserved_per_tenant_and_client():
    assert keys.node_user_pk("t1", "c1", "u-1") == "T#t1#NODEUSER#c1#u-1"
