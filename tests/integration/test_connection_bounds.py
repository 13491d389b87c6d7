"""The table's connection on moto: timeouts and attempts from the settings, one connection, and a time budget
that stops retrying a failing database but never cuts off a healthy one."""
from __future__ import annotations

import pytest
from botocore.exceptions import ReadTimeoutError

from chalicelib.domain.errors import Unavailable
from chalicelib.tables.base import TableItem, health_connection, item_types
from chalicelib.tables.connection import Limits, time_budget
from chalicelib.tables.errors import NOTHING_WRITTEN
from chalicelib.tables.items import SettingsItem
from tests.api.conftest import aws  # noqa: F401 - the moto fixture
from tests.db_faults import failing


@pytest.mark.parametrize("budget,connect,read", [(20, 2, 5), (60, 2, 5), (10, 2, 5), (20, 1, 1), (5, 2, 5)])
def test_the_attempts_of_one_call_with_their_backoff_fit_in_the_budget(budget, connect, read):
    limits = Limits.within(budget, connect, read)
    backoff = sum(2.0 ** i for i in range(limits.attempts - 1))  # botocore's longest (throttling) waits
    assert limits.attempts == 1 or limits.attempts * (connect + read) + backoff <= budget
    assert (limits.attempts + 1) * (connect + read) + backoff + 2.0 ** (limits.attempts - 1) > budget


def test_every_item_type_shares_one_connection_with_the_configured_timeouts(aws):  # noqa: F811
    connections = {id(model._get_connection()) for model in item_types()}
    assert len(connections) == 1
    config = TableItem._get_connection().connection.client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (2, 5, 2)


def test_the_health_check_makes_one_short_attempt(aws):  # noqa: F811
    config = health_connection().connection.client.meta.config
    assert (config.read_timeout, config.retries["total_max_attempts"]) == (2, 1)


def test_once_an_attempt_failed_no_attempt_starts_that_could_end_after_the_deadline(aws):  # noqa: F811
    with time_budget(5), failing({"GetItem": [ReadTimeoutError]}) as seen:  # one attempt may take 2 + 5 s
        with pytest.raises(Unavailable) as first:
            SettingsItem.get("T#t1#SETTINGS", "S#client")
        assert seen["GetItem"] == 1  # its retry could not have ended in time
        with pytest.raises(Unavailable):
            SettingsItem.get("T#t1#SETTINGS", "S#client")
        assert seen["GetItem"] == 1  # nor could a further call
    assert first.value.message == NOTHING_WRITTEN


def test_without_a_request_budget_a_call_makes_all_its_attempts(aws):  # noqa: F811
    with failing({"GetItem": [ReadTimeoutError]}) as seen, pytest.raises(Unavailable):
        SettingsItem.get("T#t1#SETTINGS", "S#client")
    assert seen["GetItem"] == 2


def test_a_healthy_database_is_never_cut_off_by_a_spent_budget(aws):  # noqa: F811
    with time_budget(0):
        assert SettingsItem.count("T#t1#SETTINGS") == 0
