"""The inbox watcher: a dropped .eml becomes a local S3 object and one S3 event, then moves aside."""
from __future__ import annotations

import os
import time

import pytest
from chalice.app import S3Event

from chalicelib.local.inbox_watcher import InboxWatcher

MESSAGE = b"From: ana@example.com\r\nTo: demo@inbound.local\r\nSubject: Hello\r\n\r\nHi there\r\n"


@pytest.fixture
def paths(tmp_path):
    inbox, s3 = tmp_path / "inbound", tmp_path / "s3"
    inbox.mkdir()
    return inbox, s3


def make_watcher(recorder, inbox, s3, **kwargs) -> InboxWatcher:
    options = {"poll_interval": 0.1, "settle_seconds": 0}
    options.update(kwargs)
    return InboxWatcher(recorder, inbox_dir=inbox, s3_local_dir=s3, bucket="nexus-inbound-email",
                        region="eu-west-1", **options)


def test_a_dropped_email_is_handed_over_once_and_moved_to_processed(recorder, paths):
    inbox, s3 = paths
    received = {}

    def read_object(event, call):
        parsed = S3Event(event, None)
        received["bytes"] = (s3 / parsed.bucket / parsed.key).read_bytes()

    recorder.reply = read_object
    watcher = make_watcher(recorder, inbox, s3).start()
    try:
        (inbox / "hello world.eml").write_bytes(MESSAGE)
        recorder.wait_for(lambda: recorder.events, timeout=3)
        time.sleep(0.4)  # several more polls: none may hand it over again
    finally:
        watcher.stop()

    assert len(recorder.events) == 1
    parsed = S3Event(recorder.events[0], None)
    assert parsed.bucket == "nexus-inbound-email"
    assert parsed.key.startswith("inbound/") and parsed.key.endswith("-hello-world.eml")
    assert received["bytes"] == MESSAGE  # the handler finds the object where the blob adapter looks
    record = recorder.events[0]["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put" and record["s3"]["object"]["size"] == len(MESSAGE)
    assert recorder.contexts[0].function_name == "on_inbound_email"
    assert not (inbox / "hello world.eml").exists()
    assert (inbox / "processed" / "hello world.eml").read_bytes() == MESSAGE


def test_a_failing_email_moves_to_failed_with_the_error_beside_it(recorder, paths, caplog):
    inbox, s3 = paths

    def reject(event, call):
        raise ValueError("not MIME")

    recorder.reply = reject
    (inbox / "bad.eml").write_bytes(b"garbage")
    watcher = make_watcher(recorder, inbox, s3)
    moved = watcher.poll_once()
    assert moved == [inbox / "failed" / "bad.eml"]
    assert "not MIME" in (inbox / "failed" / "bad.eml.error.txt").read_text()
    assert "bad.eml failed" in caplog.text
    assert watcher.poll_once() == []  # handed over once, even when it failed
    assert len(recorder.events) == 1


def test_a_file_still_being_written_waits_for_a_later_poll(recorder, paths):
    inbox, s3 = paths
    path = inbox / "slow.eml"
    path.write_bytes(MESSAGE)
    watcher = make_watcher(recorder, inbox, s3, settle_seconds=5)
    assert watcher.poll_once() == []
    past = time.time() - 10
    os.utime(path, (past, past))
    assert watcher.poll_once() == [inbox / "processed" / "slow.eml"]


def test_the_same_file_name_twice_is_kept_twice(recorder, paths):
    inbox, s3 = paths
    watcher = make_watcher(recorder, inbox, s3)
    for _ in range(2):
        (inbox / "again.eml").write_bytes(MESSAGE)
        watcher.poll_once()
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["again-1.eml", "again.eml"]
    keys = [S3Event(e, None).key for e in recorder.events]
    assert len(set(keys)) == 2


def test_other_files_are_left_alone(recorder, paths):
    inbox, s3 = paths
    (inbox / "notes.txt").write_text("x")
    (inbox / ".partial.eml").write_bytes(MESSAGE)
    assert make_watcher(recorder, inbox, s3).poll_once() == []
    assert recorder.events == []
