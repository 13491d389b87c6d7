"""The stream pump against a real DynamoDB Local stream: shape, latency, partial failures, retries, checkpoints."""
from __future__ import annotations

import base64
import json
import time

import pytest
from chalice.app import DynamoDBEvent

from chalicelib.local.stream_pump import StreamPump

pytestmark = pytest.mark.ddb

LAMBDA_RECORD_KEYS = {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}


def make_pump(table, handler, checkpoint_path, **kwargs) -> StreamPump:
    options = dict(poll_interval=0.1, retry_delay=0, max_retries=2)
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
            by_pk = dict(zip(pks(event), seqs(event)))
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


def test_a_raising_handler_gets_the_batch_again_then_the_pump_moves_on(stream_table, tmp_path, recorder, caplog):
    stream_table.put("a")

    def always_fail(event, call):
        raise RuntimeError("boom")

    recorder.reply = always_fail
    pump = make_pump(stream_table, recorder, tmp_path / "cp.json", max_retries=2)
    pump.poll_once()
    assert [pks(e) for e in recorder.events] == [["a"], ["a"], ["a"]]  # first try + 2 retries
    assert "skipping 1 record(s)" in caplog.text

    recorder.reply = lambda event, call: None
    stream_table.put("b")
    pump.poll_once()
    assert pks(recorder.events[-1]) == ["b"]


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
