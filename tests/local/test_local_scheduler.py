"""The local scheduler: rate parsing, EventBridge-shaped events, speed-up, and a loop that survives errors."""
from __future__ import annotations

import pytest
from chalice import Chalice, Cron, Rate
from chalice.app import CloudWatchEvent

from chalicelib.local.scheduler import SCALE_ENV, Scheduler, interval_seconds, scale_from_env


@pytest.mark.parametrize("expression, seconds", [
    (Rate(5, unit=Rate.MINUTES), 300),
    (Rate(1, unit=Rate.HOURS), 3600),
    (Rate(2, unit=Rate.DAYS), 172800),
    ("rate(5 minutes)", 300),
    ("rate(1 minute)", 60),
    (" RATE( 1 Day ) ", 86400),
])
def test_rates_become_seconds(expression, seconds):
    assert interval_seconds(expression) == seconds


@pytest.mark.parametrize("expression", [Cron(0, 2, "*", "*", "?", "*"), "cron(0 2 * * ? *)", "rate(0 minutes)",
                                        "every 5 minutes"])
def test_cron_and_nonsense_are_not_run_locally(expression):
    assert interval_seconds(expression) is None


def test_scale_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert scale_from_env() == 1.0
    monkeypatch.setenv(SCALE_ENV, "600")
    assert scale_from_env() == 600.0
    monkeypatch.setenv(SCALE_ENV, "fast")
    with pytest.raises(ValueError, match=SCALE_ENV):
        scale_from_env()


def make_app(recorder):
    app = Chalice(app_name="sched-test")

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def refresh_segments(event):
        return recorder(event.to_dict(), event.context)

    @app.schedule("cron(0 2 * * ? *)")
    def nightly(event):
        raise AssertionError("cron is not run locally")

    return app


def test_a_rate_handler_runs_on_its_scaled_rate_with_a_scheduled_event(recorder):
    # 1 minute at 600x is every 0.1 s.
    scheduler = Scheduler.for_app(make_app(recorder), region="eu-west-1", scale=600).start()
    try:
        recorder.wait_for(lambda: len(recorder.events) >= 3, timeout=3)
    finally:
        scheduler.stop()
    assert [job.name for job in scheduler.jobs] == ["refresh_segments"]
    event = recorder.events[0]
    parsed = CloudWatchEvent(event, None)
    assert parsed.detail_type == "Scheduled Event" and parsed.source == "aws.events"
    assert parsed.region == "eu-west-1" and parsed.resources[0].endswith("rule/refresh_segments")
    assert parsed.time.endswith("Z")
    assert recorder.contexts[0].function_name == "refresh_segments"


def test_the_first_run_waits_one_interval(recorder):
    scheduler = Scheduler.for_app(make_app(recorder), region="eu-west-1", scale=60).start()  # every 1 s
    try:
        elapsed = recorder.wait_for(lambda: recorder.events, timeout=3)
    finally:
        scheduler.stop()
    assert 0.8 <= elapsed < 2.5


def test_a_failing_handler_is_logged_and_runs_again(recorder, caplog):
    def fail_first(event, call):
        if call == 1:
            raise RuntimeError("database unavailable")

    recorder.reply = fail_first
    scheduler = Scheduler.for_app(make_app(recorder), region="eu-west-1", scale=600).start()
    try:
        recorder.wait_for(lambda: len(recorder.events) >= 2, timeout=3)
    finally:
        scheduler.stop()
    assert "scheduled handler refresh_segments failed" in caplog.text
    assert "database unavailable" in caplog.text


def test_scale_zero_turns_schedules_off(recorder):
    assert Scheduler.for_app(make_app(recorder), region="eu-west-1", scale=0).jobs == []
