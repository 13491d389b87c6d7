"""The stream pump against a real DynamoDB Local stream: shape, latency, partial failures, retries, dead letters."""
from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import time

import pytest
from chalice.app import DynamoDBEvent

from chalicelib.local.dead_letters import DeadLetters, replay
from chalicelib.local.stream_pump import MAX_RECORD_AGE_S, MAX_RETRY_ATTEMPTS, StreamPump
from tests.local.conftest import Recorder
from tests.local.server_process import OWNED_ENV, PROJECT_DIR

pytestmark = pytest.mark.ddb

LAMBDA_RECORD_KEYS = {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}


def make_pump(table, handler, checkpoint_path, **kwargs) -> StreamPump:
    options = {"poll_interval": 0.1, "retry_delay": 0.001, "max_retry_delay": 0.005}
    options.update(kwargs)
    return StreamPump(handler, table_name=table.name, endpoint_url=table.endpoint, region="eu-west-1",
                      checkpoint_path=checkpoint_path, **options)


def seqs(event: dict) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


def pks(event: dict) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]


def test_a_write_reaches_the_handler_as_a_lambda_batch_within_two_seconds(stream_table, recorder, tmp_path):
    pump = make_pump(stream_table, recorder, tmp_path / "cp.json", poll_interval=0.5).start()
    try:
        time.sleep(0.6)  # let the pump find the stream first: the 2 s are from the write on
        stream_table.put("a", blob={"B": b"\x00\xff"}, tags={"M": {"b": {"B": b"hi"}}})
        elapsed = recorder.wait_for(lambda: recorder.events, timeout=2.0)
    finally:
        pump.stop()

    assert elapsed < 2.0
    event = recorder.events[0]
    json.dumps(event)  # Lambda events are JSON: no datetimes or bytes left
    (record,) = event["Records"]
    assert set(record) == LAMBDA_RECORD_KEYS
    assert record["eventName"] == "INSERT"
    assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "eu-west-1"
    assert f"table/{stream_table.name}/stream/" in record["eventSourceARN"]
    ddb = record["dynamodb"]
    assert ddb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert ddb["NewImage"]["blob"] == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert ddb["NewImage"]["tags"]["M"]["b"] == {"B": base64.b64encode(b"hi").decode()}
    # chalice's own event classes read it as they would in Lambda
    (parsed,) = list(DynamoDBEvent(event, recorder.contexts[0]))
    assert parsed.table_name == stream_table.name
    assert parsed.keys == {"pk": {"S": "a"}}
    assert parsed.sequence_number == ddb["SequenceNumber"]
    assert parsed.timestamp.year >= 2024
    assert recorder.contexts[0].function_name == "on_table_stream"


def test_modify_and_remove_carry_old_and_new_images(stream_table, recorder, tmp_path):
    pump = make_pump(stream_table, recorder, tmp_path / "cp.json")
    stream_table.put("a", n={"N": "1"})
    stream_table.put("a", n={"N": "2"})
    stream_table.client.delete_item(TableName=stream_table.name, Key={"pk": {"S": "a"}})
    pump.poll_once()
    records = [r for e in recorder.events for r in e["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[1]["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    assert records[1]["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert "NewImage" not in records[2]["dynamodb"] and records[2]["dynamodb"]["OldImage"]["n"] == {"N": "2"}


def test_batch_item_failures_redeliver_only_the_failed_record_and_those_after_it(stream_table, tmp_path, recorder):
    for pk in "abcd":
        stream_table.put(pk)

    def fail_b_and_d_once(event, call):
        if call == 1:
            by_pk = dict(zip(pks(event), seqs(event), strict=False))
            return {"batchItemFailures": [{"itemIdentifier": by_pk["d"]}, {"itemIdentifier": by_pk["b"]}]}
        return {"batchItemFailures": []}

    recorder.reply = fail_b_and_d_once
    pump = make_pump(stream_table, recorder, tmp_path / "cp.json")
    assert pump.poll_once() == 4
    assert [pks(e) for e in recorder.events] == [["a", "b", "c", "d"], ["b", "c", "d"]]
    assert pump.poll_once() == 0  # nothing new, nothing redelivered


def test_an_unknown_item_identifier_retries_the_whole_batch(stream_table, tmp_path, recorder):
    stream_table.put("a")
    stream_table.put("b")
    recorder.reply = lambda event, call: {"batchItemFailures": [{"itemIdentifier": "nope"}]} if call == 1 else None
    make_pump(stream_table, recorder, tmp_path / "cp.json").poll_once()
    assert [pks(e) for e in recorder.events] == [["a", "b"], ["a", "b"]]


def delivered(recorder, ok) -> list[str]:
    """The keys of the batches the handler accepted, in delivery order."""
    return [pk for event, accepted in zip(recorder.events, ok, strict=False) if accepted for pk in pks(event)]


def checkpoint_seq(path) -> str:
    ((shards),) = json.loads(path.read_text())["on_table_stream"].values()
    ((entry),) = shards.values()
    return entry["seq"]


def dead_letters(tmp_path) -> list[dict]:
    folder = tmp_path / "dead-letters" / "on_table_stream"
    return [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))] if folder.exists() else []


@pytest.mark.parametrize("failure", ["raises", "reports every record"])
def test_a_handler_failing_many_times_then_recovering_gets_every_record_and_none_is_skipped(
        stream_table, tmp_path, recorder, failure):
    for pk in "abcde":
        stream_table.put(pk)
    ok = []

    def fail_eight_times(event, call):
        ok.append(call > 8)  # twice as many failures as the old pump tolerated before skipping
        if call <= 8 and failure == "raises":
            raise RuntimeError("DynamoDB is away")
        if call <= 8:
            return {"batchItemFailures": [{"itemIdentifier": n} for n in seqs(event)]}
        return {"batchItemFailures": []}

    recorder.reply = fail_eight_times
    pump = make_pump(stream_table, recorder, tmp_path / "cp.json")
    assert pump.poll_once() == 5
    assert delivered(recorder, ok) == list("abcde")
    assert dead_letters(tmp_path) == []
    assert checkpoint_seq(tmp_path / "cp.json") == seqs(recorder.events[-1])[-1]


@pytest.mark.parametrize("failure", ["raises", "reports the record"])
def test_a_poison_record_is_dead_lettered_and_the_others_are_delivered(stream_table, tmp_path, recorder, failure):
    for pk in "abcd":
        stream_table.put(pk)
    applied = []

    def poison_b(event, call):
        if "b" in pks(event) and failure == "raises":
            raise ValueError("cannot decode b")
        applied.extend(pk for pk in pks(event) if pk != "b")
        if "b" not in pks(event):
            return {"batchItemFailures": []}
        logging.getLogger("chalicelib.handlers.stream").error("effect of b failed: cannot decode b")
        by_pk = dict(zip(pks(event), seqs(event), strict=False))
        return {"batchItemFailures": [{"itemIdentifier": by_pk["b"]}]}

    recorder.reply = poison_b
    pump = make_pump(stream_table, recorder, tmp_path / "cp.json")
    assert pump.poll_once() == 4
    assert list(dict.fromkeys(applied)) == ["a", "c", "d"]
    if failure == "raises":  # bisected down to b alone, which then fails its first try and 10 retries
        assert sum(1 for e in recorder.events if pks(e) == ["b"]) == 11
    (letter,) = dead_letters(tmp_path)
    assert set(letter["record"]) == LAMBDA_RECORD_KEYS
    assert letter["record"]["dynamodb"]["Keys"] == {"pk": {"S": "b"}}
    assert letter["attempts"] == 11 and letter["consumer"] == "on_table_stream"
    assert "cannot decode b" in letter["error"]
    by_pk = {pk: seq for e in recorder.events for pk, seq in zip(pks(e), seqs(e), strict=False)}
    assert (tmp_path / "dead-letters" / "on_table_stream" / f"{by_pk['b']}.json").exists()
    assert checkpoint_seq(tmp_path / "cp.json") == by_pk["d"]
    assert pump.poll_once() == 0  # nothing redelivered


def test_the_checkpoint_does_not_pass_a_record_still_being_retried(stream_table, tmp_path, recorder):
    for pk in "abc":
        stream_table.put(pk)
    checkpoint = tmp_path / "cp.json"
    pump = make_pump(stream_table, recorder, checkpoint)

    def stop_while_b_fails(event, call):
        if "b" not in pks(event):
            return None
        if call == 4:
            pump._stop.set()  # the process stops mid-retry
        raise RuntimeError("b fails")

    recorder.reply = stop_while_b_fails
    pump.poll_once()
    by_pk = {pk: seq for e in recorder.events for pk, seq in zip(pks(e), seqs(e), strict=False)}
    assert checkpoint_seq(checkpoint) == by_pk["a"]
    assert dead_letters(tmp_path) == []

    recorder.events.clear()
    recorder.reply = lambda event, call: None
    make_pump(stream_table, recorder, checkpoint).poll_once()  # the next run
    assert [pks(e) for e in recorder.events] == [["b", "c"]]


def test_a_failing_record_older_than_the_maximum_age_is_dead_lettered_at_once(stream_table, tmp_path, recorder):
    stream_table.put("a")
    recorder.reply = lambda event, call: {"batchItemFailures": [{"itemIdentifier": seqs(event)[0]}]}
    make_pump(stream_table, recorder, tmp_path / "cp.json", max_record_age=0).poll_once()
    assert len(recorder.events) == 1
    assert [letter["attempts"] for letter in dead_letters(tmp_path)] == [1]


def test_replay_delivers_dead_letters_once_the_handler_is_fixed_and_empties_the_folder(
        stream_table, tmp_path, recorder):
    for pk in "abcd":
        stream_table.put(pk)
    def fail_on_b_and_c(event, call):
        if {"b", "c"} & set(pks(event)):
            raise RuntimeError("bug")

    recorder.reply = fail_on_b_and_c
    make_pump(stream_table, recorder, tmp_path / "cp.json", max_retry_attempts=2).poll_once()
    folder = tmp_path / "dead-letters"
    assert [letter["record"]["dynamodb"]["Keys"]["pk"]["S"] for letter in dead_letters(tmp_path)] == ["b", "c"]

    still_broken = Recorder(reply=lambda event, call: {"batchItemFailures": [{"itemIdentifier": seqs(event)[0]}]})
    assert replay(DeadLetters(folder).list(), {"on_table_stream": still_broken}) == (0, 2)
    assert len(dead_letters(tmp_path)) == 2  # kept for the next try

    fixed = Recorder()
    assert replay(DeadLetters(folder).list(), {"on_table_stream": fixed}) == (2, 0)
    assert [pks(e) for e in fixed.events] == [["b"], ["c"]]  # stream order, one record per invocation
    assert set(fixed.events[0]["Records"][0]) == LAMBDA_RECORD_KEYS
    (parsed,) = list(DynamoDBEvent(fixed.events[0], fixed.contexts[0]))  # chalice reads it as in Lambda
    assert parsed.keys == {"pk": {"S": "b"}}
    assert dead_letters(tmp_path) == []


def test_the_pump_gives_up_where_the_templates_stream_mapping_does():
    from deploy.package import merge_template

    mapping = merge_template("dev")["Resources"]["OnTableStream"]["Properties"]["Events"][
        "OnTableStreamDynamodbEventSource"]["Properties"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == MAX_RETRY_ATTEMPTS
    assert mapping["MaximumRecordAgeInSeconds"] == MAX_RECORD_AGE_S
    assert "OnFailure" in mapping["DestinationConfig"]


def test_a_starting_pump_says_that_dead_letters_wait(stream_table, tmp_path, recorder, caplog):
    stream_table.put("a")
    recorder.reply = lambda event, call: {"batchItemFailures": [{"itemIdentifier": seqs(event)[0]}]}
    make_pump(stream_table, recorder, tmp_path / "cp.json", max_retry_attempts=0).poll_once()
    pump = make_pump(stream_table, Recorder(), tmp_path / "cp.json").start()
    pump.stop()
    assert "1 dead-lettered record(s) of on_table_stream wait in" in caplog.text


STAND_IN_APP = """
import json, os
from chalice import Chalice
app = Chalice(app_name="stand-in")

@app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:eu-west-1:000000000000:table/t/stream/s")
def on_table_stream(event):
    with open(os.path.join(os.environ["DATA_DIR"], "replayed.jsonl"), "a") as fh:
        for record in event:
            fh.write(json.dumps(record.keys) + "\\n")
"""


def test_the_replay_command_hands_dead_letters_to_the_apps_stream_handler(stream_table, tmp_path, recorder):
    data = tmp_path / "data"
    stream_table.put("a")
    stream_table.put("b")
    def always_fail(event, call):
        raise RuntimeError("bug")

    recorder.reply = always_fail
    make_pump(stream_table, recorder, data / "stream-checkpoints.json", max_retry_attempts=0).poll_once()
    folder = data / "dead-letters" / "on_table_stream"
    files = sorted(folder.glob("*.json"))
    assert len(files) == 2
    (tmp_path / "app.py").write_text(STAND_IN_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in OWNED_ENV}
    env.update(DATA_DIR=str(data), DYNAMODB_ENDPOINT=stream_table.endpoint, PYTHONPATH=str(PROJECT_DIR))
    command = [sys.executable, "-m", "chalicelib.local", "replay"]

    done = subprocess.run([*command, "--file", str(files[1])], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in folder.glob("*.json")] == [files[0].name]
    done = subprocess.run([*command, "--consumer", "on_table_stream"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "replayed 1" in done.stdout
    assert list(folder.glob("*.json")) == []
    replayed = [json.loads(line) for line in (data / "replayed.jsonl").read_text().splitlines()]
    assert replayed == [{"pk": {"S": "b"}}, {"pk": {"S": "a"}}]


def test_a_restarted_pump_resumes_after_its_checkpoint(stream_table, tmp_path, recorder):
    checkpoint = tmp_path / "stream-checkpoints.json"
    stream_table.put("a")
    stream_table.put("b")
    make_pump(stream_table, recorder, checkpoint).poll_once()
    assert [pks(e) for e in recorder.events] == [["a", "b"]]
    saved = json.loads(checkpoint.read_text())["on_table_stream"]
    ((arn, shards),) = saved.items()
    assert stream_table.name in arn
    assert [s["seq"] for s in shards.values()] == [seqs(recorder.events[0])[-1]]

    stream_table.put("c")
    make_pump(stream_table, recorder, checkpoint).poll_once()  # a new process, same checkpoint file
    assert [pks(e) for e in recorder.events] == [["a", "b"], ["c"]]


def test_batches_are_cut_at_batch_size_in_stream_order(stream_table, tmp_path, recorder):
    for pk in "abcde":
        stream_table.put(pk)
    make_pump(stream_table, recorder, tmp_path / "cp.json", batch_size=2).poll_once()
    assert [pks(e) for e in recorder.events] == [["a", "b"], ["c", "d"], ["e"]]


def test_a_missing_table_is_waited_for_quietly(ddb_endpoint, tmp_path, recorder):
    pump = StreamPump(recorder, table_name="not-created-yet", endpoint_url=ddb_endpoint, region="eu-west-1",
                      checkpoint_path=tmp_path / "cp.json")
    assert pump.poll_once() == 0
    assert recorder.events == []
