"""Settings are read from the environment as pydantic-settings read them: names in any case, aliases, empty unset."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.config import get_settings, reset_settings


@pytest.fixture
def env(monkeypatch):
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "TABLE_NAME", "CURSOR_SECRET", "DATA_DIR", "OUTBOX_DIR",
                 "DB_READ_TIMEOUT", "DYNAMODB_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    yield monkeypatch
    reset_settings()


def test_defaults_apply_without_variables(env):
    s = get_settings()
    assert (s.table_name, s.region, s.dynamodb_endpoint, s.db_read_timeout) == (
        "nexus-client-management", "eu-west-1", None, 5.0)
    assert s.outbox_dir == "var/outbox"


def test_names_match_in_any_case_and_text_is_converted(env):
    env.setenv("table_name", "lower")
    env.setenv("Db_Read_Timeout", "2.5")
    s = get_settings()
    assert (s.table_name, s.db_read_timeout) == ("lower", 2.5)


def test_the_first_alias_set_wins_and_empty_values_count_as_unset(env):
    env.setenv("AWS_REGION", "us-east-2")
    env.setenv("AWS_DEFAULT_REGION", "")
    assert get_settings().region == "us-east-2"
    reset_settings()
    env.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert get_settings().region == "eu-central-1"


def test_an_aliased_field_is_read_by_its_alias_only(env):
    env.setenv("CURSOR_SECRET_KEY", "ignored")
    assert get_settings().cursor_secret_key == ""
    reset_settings()
    env.setenv("CURSOR_SECRET", "c1")
    assert get_settings().cursor_secret == b"c1"


def test_derived_defaults_and_validation_hold(env):
    env.setenv("DATA_DIR", "/data")
    assert get_settings().outbox_dir == "/data/outbox"
    reset_settings()
    env.setenv("DB_READ_TIMEOUT", "0")
    with pytest.raises(ValidationError, match="db_read_timeout"):
        get_settings()


def test_settings_are_frozen(env):
    with pytest.raises(ValidationError):
        get_settings().table_name = "other"  # type: ignore[misc]
