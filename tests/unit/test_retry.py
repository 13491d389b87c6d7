"""The one retry of optimistic writes: lost races run again with jittered backoff, inside a time budget."""
from __future__ import annotations

import time

import pytest

from chalicelib.config import reset_settings
from chalicelib.domain import retry
from chalicelib.domain.errors import Contention, StaleVersion, Unavailable, VersionConflict
from chalicelib.handlers.errors import status_of


class Losing:
    """An attempt that loses `times` races, then lands."""

    def __init__(self, times: int, error: Exception | None = None):
        self.times, self.calls = times, 0
        self.error = error or VersionConflict("written meanwhile")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "landed"


def test_a_write_that_loses_races_is_run_again_until_it_lands():
    attempt = Losing(times=12)
    assert retry.retrying(attempt) == "landed"
    assert attempt.calls == 13  # more than any fixed small attempt count allowed before


def test_a_stale_if_match_is_never_retried():
    attempt = Losing(times=1, error=StaleVersion("the client is at version 3, not 2"))
    with pytest.raises(StaleVersion):
        retry.retrying(attempt)
    assert attempt.calls == 1


def test_other_errors_end_at_once():
    attempt = Losing(times=1, error=ValueError("bad"))
    with pytest.raises(ValueError):
        retry.retrying(attempt)
    assert attempt.calls == 1


def test_when_the_budget_runs_out_it_is_503_unavailable_saying_nothing_was_written():
    attempt = Losing(times=10**9)
    started = time.monotonic()
    with pytest.raises(Contention) as caught:
        retry.retrying(attempt, "the client", seconds=0.3)
    assert time.monotonic() - started < 2.0  # generous: the budget is 0.3 s
    assert isinstance(caught.value, Unavailable) and not isinstance(caught.value, VersionConflict)
    assert (status_of(caught.value), caught.value.code) == (503, "unavailable")
    assert "the client" in caught.value.message and "nothing was written" in caught.value.message
    assert attempt.calls > 1


def test_waits_are_jittered_and_widen(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # tenacity sleeps through time.sleep
    retry.retrying(Losing(times=40))
    assert len(set(waits)) > 30  # random, not a fixed schedule
    assert all(0 <= w <= retry.MAX_WAIT for w in waits)
    assert max(waits[-10:]) > max(waits[:3])  # the window grows from FIRST_WAIT towards MAX_WAIT


def test_the_budget_is_well_inside_the_functions_timeout(monkeypatch):
    monkeypatch.setenv("FUNCTION_TIMEOUT", "6")
    reset_settings()
    try:
        assert retry.budget() == 2.0
        monkeypatch.setenv("FUNCTION_TIMEOUT", "900")
        reset_settings()
        assert retry.budget() == retry.MAX_BUDGET < 29  # an API answer still comes before API Gateway's 29 s
    finally:
        monkeypatch.delenv("FUNCTION_TIMEOUT")
        reset_settings()


def test_nested_retries_share_the_outer_budget():
    inner_calls = []

    def outer() -> str:
        inner = Losing(times=10**9)
        inner_calls.append(inner)
        return retry.retrying(inner, "the counters")  # would take its own full budget if nested ones did not share

    started = time.monotonic()
    with pytest.raises(Contention, match="the counters"):
        retry.retrying(outer, "the client", seconds=0.3)
    assert time.monotonic() - started < 2.0
    assert len(inner_calls) == 1  # an inner Contention is not a lost race: the outer does not run it again
