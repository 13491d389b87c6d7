"""`python -m chalicelib.ops` on DynamoDB Local: rebuilds run here with their progress, or start on the job runner;
a poison stream record dead-lettered by the local pump is applied by `replay` once fixed."""
from __future__ import annotations

import json
import os
import re
from unittest import mock

import pytest

from chalicelib.domain import client_cases, segment_cases
from chalicelib.domain.scoring import LEAD
from chalicelib.local.stream_pump import StreamPump
from chalicelib.ops.__main__ import main
from chalicelib.tables.stores import Stores
from tests.api.conftest import aws  # noqa: F401 - a fixture: the app on moto

pytestmark = pytest.mark.ddb

VIP = {"match": "all", "conditions": [{"field": "pricing_tier", "operator": "equals", "value": "vip"}]}


@pytest.fixture
def ops(ddb_table, capsys):
    """`main([...])` in this process on the test's table: (exit code, what it printed). The local defaults it
    applies (secrets, fake credentials) are undone afterwards."""
    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(argv))
        printed = capsys.readouterr()
        run.err = printed.err  # type: ignore[attr-defined]
        return code, printed.out

    with mock.patch.dict(os.environ):
        yield run


def clients(tenant: str, *names: str, **fields) -> list[str]:
    return [client_cases.create_client(Stores(tenant), {"name": name, **fields}).id for name in names]


def scored(tenant: str, client_id: str) -> bool:
    return Stores(tenant).facts.score(client_id, LEAD) is not None


def jobs_of(tenant: str, kind: str):
    return Stores(tenant).jobs.page(kind, 10, None)[0]


def test_rescore_rescores_every_client_of_the_tenant_and_reports_the_count(ops):
    ids = clients("t", "Acme", "Bolt", "Cirrus")
    clients("other", "Elsewhere")
    assert not any(scored("t", cid) for cid in ids)  # the stream never ran: no stored scores yet

    code, out = ops("rescore", "--tenant", "t")

    assert code == 0, out
    assert all(scored("t", cid) for cid in ids)
    assert "rescored 3 clients" in out
    (job,) = jobs_of("t", "rescore")
    assert job.status == "done" and job.processed == 3
    assert jobs_of("other", "rescore") == []


def test_segments_refreshes_every_active_dynamic_segment(ops):
    stores = Stores("t")
    clients("t", "Acme", pricing_tier="vip")
    vips = segment_cases.create_segment(stores, {"name": "VIPs", "type": "dynamic", "criteria": VIP}, actor="u")
    manual = segment_cases.create_segment(stores, {"name": "VIPs by hand", "type": "dynamic", "criteria": VIP,
                                                   "refresh_frequency": "manual"}, actor="u")
    static = segment_cases.create_segment(stores, {"name": "Picked", "type": "static"}, actor="u")
    clients("t", "Bolt", "Cirrus", pricing_tier="vip")  # no stream here: the segments do not know them yet
    assert stores.segments.count_members(vips.id) == 1

    code, out = ops("segments", "--tenant", "t")

    assert code == 0, out
    assert stores.segments.count_members(vips.id) == 3
    assert stores.segments.count_members(manual.id) == 3
    assert stores.segments.get(vips.id).client_count == 3
    assert "segment 'VIPs'" in out and "3 members" in out
    assert "'Picked'" in out and "static" in out
    assert stores.segments.count_members(static.id) == 0


def test_progress_outside_a_terminal_is_plain_lines_of_done_over_total(ops, monkeypatch):
    from chalicelib.domain import import_cases
    from chalicelib.ops import progress, runner

    clients("t", *[f"Client {n}" for n in range(5)])
    monkeypatch.setattr(import_cases, "REINDEX_PAGE", 2)  # three steps
    monkeypatch.setattr(runner, "POLL", 0)
    monkeypatch.setattr(progress, "EVERY", 0)

    code, out = ops("reindex", "--tenant", "t")

    assert code == 0, out
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("reindex t:")]
    assert any(re.search(r": [24] / 5 clients \(\d+%\), [\d.,]+/s", line) for line in lines), out
    assert "5 / 5 clients in" in lines[-1]


def test_all_covers_every_tenant_of_the_directory(ops):
    ids = {tenant: clients(tenant, "Acme", "Bolt") for tenant in ("t", "u", "v")}

    code, out = ops("rescore", "--all")

    assert code == 0, out
    assert all(scored(tenant, cid) for tenant, found in ids.items() for cid in found)
    assert [line.split(":")[0] for line in out.splitlines() if "rescored" in line] == [
        "rescore t", "rescore u", "rescore v"]


def test_as_job_starts_the_job_on_the_runner_and_runs_nothing(ops, tmp_path):
    (client_id,) = clients("t", "Acme")

    code, out = ops("rescore", "--tenant", "t", "--as-job")

    assert code == 0, out
    (job,) = jobs_of("t", "rescore")
    assert job.status == "queued" and job.step == 0
    assert job.id in out and f"python -m chalicelib.local jobs show {job.id} --tenant t --kind rescore" in out
    assert len(list((tmp_path / "jobs" / "pending").glob("*.json"))) == 1
    assert not scored("t", client_id)


def test_an_unknown_tenant_is_bad_usage_and_starts_nothing(ops):
    clients("t", "Acme")
    code, _ = ops("rescore", "--tenant", "nobody")
    assert code == 2
    assert jobs_of("nobody", "rescore") == []
    assert ops("rescore")[0] == 2  # neither --tenant nor --all


def test_a_failing_step_fails_the_job_and_the_command(ops, monkeypatch):
    from chalicelib.domain import scoring_cases

    clients("t", "Acme")

    def broken(*args, **kwargs):
        raise RuntimeError("scoring is broken")

    monkeypatch.setattr(scoring_cases, "rescore_page", broken)
    code, out = ops("rescore", "--tenant", "t")
    assert code == 1
    assert "failed: RuntimeError: scoring is broken" in out and "jobs retry" in out
    assert jobs_of("t", "rescore")[0].status == "failed"


# --- the done-when of the issue: a poison stream record, dead-lettered, then replayed once fixed -------------------

def pump_until_quiet(ddb_table: str, ddb_endpoint: str, data_dir) -> None:
    import app as app_module

    pump = StreamPump(app_module.on_table_stream, table_name=ddb_table, endpoint_url=ddb_endpoint,
                      region="eu-west-1", checkpoint_path=data_dir / "stream-checkpoints.json",
                      max_retry_attempts=1, retry_delay=0.001, max_retry_delay=0.005)
    for _ in range(10):
        if pump.poll_once() == 0:
            return
    raise AssertionError("the stream never went quiet")


def test_a_poison_record_is_dead_lettered_then_replay_applies_it_once_fixed(ops, ddb_table, ddb_endpoint,
                                                                            tmp_path, monkeypatch):
    from chalicelib.handlers.stream import EFFECTS

    poison, healthy = clients("t", "Poison", "Healthy")
    rescore = EFFECTS["rescore"]

    def fails_for_poison(stores, client_id):
        if client_id == poison:
            raise RuntimeError("a bug in the rescore effect")
        return rescore(stores, client_id)

    with monkeypatch.context() as bug:
        bug.setitem(EFFECTS, "rescore", fails_for_poison)
        pump_until_quiet(ddb_table, ddb_endpoint, tmp_path)

    folder = tmp_path / "dead-letters" / "on_table_stream"
    (letter,) = folder.glob("*.json")
    assert poison in letter.read_text()
    assert scored("t", healthy) and not scored("t", poison)

    code, out = ops("replay")  # the fix is in: the patch is gone

    assert code == 0, out
    assert scored("t", poison)
    assert list(folder.glob("*.json")) == []
    assert f"applied on_table_stream record {letter.stem}" in out and "replayed 1, 0 failed" in out
    assert ops("replay") == (0, f"nothing to replay in {tmp_path / 'dead-letters'}/\n")


def test_a_dead_letter_that_fails_again_is_kept_and_the_command_fails(ops, ddb_table, ddb_endpoint, tmp_path,
                                                                      monkeypatch):
    from chalicelib.handlers.stream import EFFECTS

    (poison,) = clients("t", "Poison")

    def always_fails(stores, client_id):
        raise RuntimeError("still broken")

    monkeypatch.setitem(EFFECTS, "rescore", always_fails)
    pump_until_quiet(ddb_table, ddb_endpoint, tmp_path)
    code, out = ops("replay")
    assert code == 1
    assert "failed again" in out and "replayed 0, 1 failed" in out
    assert len(list((tmp_path / "dead-letters" / "on_table_stream").glob("*.json"))) == 1


def test_verify_prints_every_difference_and_fails_then_recount_repairs_them(ops):
    from chalicelib.tables import keys
    from chalicelib.tables.items import FacetCount

    clients("t", "Acme", "Bolt", type="company")
    code, out = ops("verify", "--tenant", "t")
    assert code == 0, out
    assert "no difference" in out

    FacetCount(keys.facet_pk("t", "type", "company"), keys.count_sk(2)).update(
        actions=[FacetCount.n.add(3), FacetCount.kind.set(FacetCount)])  # a counter broken behind the app's back
    code, out = ops("verify", "--tenant", "t")
    assert code == 1
    assert "1 difference:" in out
    assert "  counter  type=company: shards sum to 5, recount 2" in out

    code, out = ops("recount", "--tenant", "t")
    assert code == 0, out
    assert "repaired counters 1" in out and "counter  type=company" in out
    assert ops("verify", "--tenant", "t")[0] == 0


def test_show_follows_a_job_left_to_the_runner_until_it_is_done(ops):
    from chalicelib.local.__main__ import main as local_main

    (client_id,) = clients("t", "Acme")
    ops("rescore", "--tenant", "t", "--as-job")
    (job,) = jobs_of("t", "rescore")
    code, out = ops("show", job.id, "--tenant", "t", "--kind", "rescore")
    assert code == 0 and json.loads(out)["status"] == "queued"

    assert local_main(["jobs", "run"]) == 0  # the runner delivers it, as `make run`'s worker does

    code, out = ops("show", job.id, "--tenant", "t", "--kind", "rescore", "--follow")
    assert code == 0, out
    assert "rescored 1 client," in out and scored("t", client_id)


@pytest.mark.usefixtures("aws")
def test_with_aws_the_environment_is_used_as_it_is_and_as_job_goes_to_the_sqs_jobs_queue(capsys):
    """On moto here: --aws starts no DynamoDB Local and keeps the environment's table, credentials and queues."""
    from chalicelib import queue
    from chalicelib.config import get_settings

    (client_id,) = clients("t", "Acme")
    assert main(["rescore", "--tenant", "t", "--aws"]) == 0
    assert "rescored 1 client," in capsys.readouterr().out and scored("t", client_id)

    assert main(["reindex", "--tenant", "t", "--aws", "--as-job"]) == 0
    out = capsys.readouterr().out
    (job,) = jobs_of("t", "reindex_clients")
    assert "the jobs queue (SQS)" in out
    assert f"python -m chalicelib.ops show {job.id} --tenant t --kind reindex_clients --follow --aws" in out
    sqs = queue._sqs(get_settings().region)
    (message,) = sqs.receive_message(QueueUrl=get_settings().jobs_queue_url)["Messages"]
    assert json.loads(message["Body"])["job_id"] == job.id


@pytest.mark.usefixtures("aws")
def test_aws_and_a_local_endpoint_together_are_bad_usage(monkeypatch):
    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://127.0.0.1:1")
    assert main(["rescore", "--all", "--aws"]) == 2


def test_ctrl_c_fails_the_job_at_its_saved_step_so_the_runner_can_resume_it(ops, monkeypatch):
    from chalicelib.domain import scoring_cases

    clients("t", "Acme")

    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring_cases, "rescore_page", pressed)
    code, _ = ops("rescore", "--tenant", "t")
    assert code == 1
    (job,) = jobs_of("t", "rescore")
    assert job.status == "failed" and job.error == "interrupted by the operator (Ctrl-C)" and job.step == 0
    assert f"jobs retry {job.id} --tenant t --kind rescore" in ops.err
