"""The job runner's rules on in-memory fakes: steps, progress, redeliveries, lost enqueues, retries and failure."""
from __future__ import annotations

import pytest

from chalicelib.domain import job_cases
from chalicelib.domain.errors import Conflict, NotFound, VersionConflict
from chalicelib.domain.jobs import MAX_ATTEMPTS, MAX_ERRORS, Job, StepResult, after_step, retry_delay
from chalicelib.domain.values import utcnow


class FakeJobs:
    """The JobRepository port: conditional create and save on step, and a queue that records what was sent."""

    def __init__(self):
        self.rows: dict[tuple[str, str], Job] = {}
        self.sent: list[dict] = []
        self.saves = 0
        self.fail_enqueue = False

    def create(self, job):
        if (job.kind, job.id) in self.rows:
            return False
        self.rows[(job.kind, job.id)] = job
        return True

    def get(self, kind, job_id):
        if (kind, job_id) not in self.rows:
            raise NotFound("no job")
        return self.rows[(kind, job_id)]

    def save(self, job, *, step, status=None):
        stored = self.rows.get((job.kind, job.id))
        if stored is None or stored.step != step or (status is not None and stored.status != status):
            raise VersionConflict("moved on")
        self.rows[(job.kind, job.id)] = job
        self.saves += 1

    def mark_sent(self, kind, job_id, step):
        stored = self.rows[(kind, job_id)]
        if stored.step == step:
            self.rows[(kind, job_id)] = stored.model_copy(update={"sent_step": step})

    def page(self, kind, limit, after):
        ids = sorted((i for k, i in self.rows if k == kind and (after is None or i < after)), reverse=True)
        return [self.rows[(kind, i)] for i in ids[:limit]], (ids[limit - 1] if len(ids) > limit else None)

    def enqueue(self, message):
        if self.fail_enqueue:
            raise RuntimeError("the queue is down")
        self.sent.append(message)


class FakeStores:
    def __init__(self, jobs: FakeJobs, tenant_id="t1", actor=None):
        self.tenant_id, self.actor, self.jobs = tenant_id, actor, jobs


class Counter:
    """A kind whose job counts to params["upto"] in steps of params["by"], recording every step it runs."""

    def __init__(self):
        self.calls: list[int] = []
        self.raise_at: int | None = None
        self.actors: list[str | None] = []

    def __call__(self, stores, job, deadline):
        at = job.state.get("at", 0)
        self.calls.append(at)
        self.actors.append(stores.actor)
        if self.raise_at == at:
            raise RuntimeError(f"boom at {at}")
        upto, by = job.params["upto"], job.params.get("by", 10)
        nxt = min(upto, at + by)
        return StepResult(state={"at": nxt}, processed=nxt - at, result={"counted": nxt - at, "last": f"at {nxt}"},
                          errors=[{"row": nxt}] if job.params.get("errors") else [], done=nxt >= upto)


@pytest.fixture
def runner():
    jobs, counter = FakeJobs(), Counter()
    job_cases.register_kind("count", counter)
    stores = FakeStores(jobs)

    def deliver(message, receive_count=1, deadline=lambda: False):
        return job_cases.handle_message(message, deadline, stores_for=lambda t, actor=None: FakeStores(jobs, t, actor),
                                        receive_count=receive_count)

    def drain(limit=100):
        n = 0
        while jobs.sent and n < limit:
            deliver(jobs.sent.pop(0))
            n += 1
        return n

    return stores, jobs, counter, deliver, drain


def test_a_started_job_is_queued_and_its_first_step_enqueued(runner):
    stores, jobs, _, _, _ = runner
    job = job_cases.start_job(stores, "count", {"upto": 30}, total=30)
    assert job.status == "queued" and job.step == 0 and job.total == 30
    assert jobs.sent == [{"tenant_id": "t1", "kind": "count", "job_id": job.id, "step": 0}]


def test_a_multi_step_job_finishes_with_progress_saved_after_each_step(runner):
    stores, jobs, counter, deliver, _ = runner
    job = job_cases.start_job(stores, "count", {"upto": 25})
    seen = []
    while jobs.sent:
        deliver(jobs.sent.pop(0))
        seen.append(job_cases.get_job(stores, "count", job.id))
    assert [(j.step, j.processed, j.status) for j in seen] == [(1, 10, "running"), (2, 20, "running"),
                                                                (3, 25, "done")]
    assert counter.calls == [0, 10, 20]
    assert seen[-1].result == {"counted": 25, "last": "at 25"} and seen[-1].finished_at is not None


def test_a_step_delivered_twice_advances_the_job_once(runner):
    stores, jobs, counter, deliver, drain = runner
    job = job_cases.start_job(stores, "count", {"upto": 20})
    first = jobs.sent.pop(0)
    assert deliver(first)["outcome"] == "stepped"
    assert deliver(first)["outcome"] == "ignored"  # its successor was sent already: nothing sent twice
    assert len(jobs.sent) == 1
    drain()
    done = job_cases.get_job(stores, "count", job.id)
    assert done.status == "done" and done.processed == 20 and done.result["counted"] == 20
    assert counter.calls == [0, 10]


def test_two_deliveries_racing_on_one_step_save_it_once(runner):
    stores, jobs, counter, _, _ = runner
    job = job_cases.start_job(stores, "count", {"upto": 20})
    message = jobs.sent.pop(0)
    stale = job_cases.get_job(stores, "count", job.id)
    # The other delivery saves step 0 while this one is still running it.
    jobs.save(after_step(stale, StepResult(state={"at": 10}, processed=10), utcnow()), step=0)
    outcome = job_cases.handle_message(message, lambda: False, receive_count=1,
                                       stores_for=lambda t, a=None: _Racing(jobs, stale))
    assert outcome["outcome"] == "ignored" and jobs.sent == []
    assert job_cases.get_job(stores, "count", job.id).processed == 10


class _Racing(FakeStores):
    """Reads the job as it was before the other delivery saved it."""

    def __init__(self, jobs, stale):
        super().__init__(_StaleRead(jobs, stale))


class _StaleRead(FakeJobs):
    def __init__(self, jobs, stale):
        self.__dict__ = jobs.__dict__
        self._stale = stale

    def get(self, kind, job_id):
        return self._stale


def test_a_crash_after_the_save_before_the_enqueue_is_recovered_by_the_redelivery(runner):
    stores, jobs, counter, deliver, drain = runner
    job = job_cases.start_job(stores, "count", {"upto": 20})
    message = jobs.sent.pop(0)
    jobs.fail_enqueue = True
    with pytest.raises(RuntimeError):
        deliver(message)  # step 0 saved, its successor never sent: SQS delivers step 0 again
    jobs.fail_enqueue = False
    assert job_cases.get_job(stores, "count", job.id).step == 1 and jobs.sent == []
    assert deliver(message, receive_count=2) == {"outcome": "requeued", "step": 1}
    drain()
    done = job_cases.get_job(stores, "count", job.id)
    assert done.status == "done" and done.processed == 20 and counter.calls == [0, 10]


def test_a_failing_step_is_retried_and_the_last_receive_fails_the_job_with_its_error(runner):
    stores, jobs, counter, deliver, _ = runner
    counter.raise_at = 10
    job = job_cases.start_job(stores, "count", {"upto": 30})
    deliver(jobs.sent.pop(0))
    message = jobs.sent.pop(0)
    for receive in range(1, MAX_ATTEMPTS):
        with pytest.raises(RuntimeError):
            deliver(message, receive_count=receive)
        state = job_cases.get_job(stores, "count", job.id)
        assert state.status == "running" and state.attempts == receive and state.step == 1
    with pytest.raises(RuntimeError):
        deliver(message, receive_count=MAX_ATTEMPTS)
    failed = job_cases.get_job(stores, "count", job.id)
    assert failed.status == "failed" and failed.error == "RuntimeError: boom at 10"
    assert failed.processed == 10 and failed.finished_at is not None  # the first step's progress is kept


def test_retrying_a_failed_job_resumes_it_at_the_step_it_failed(runner):
    stores, jobs, counter, deliver, drain = runner
    counter.raise_at = 10
    job = job_cases.start_job(stores, "count", {"upto": 20})
    deliver(jobs.sent.pop(0))
    with pytest.raises(RuntimeError):
        deliver(jobs.sent.pop(0), receive_count=MAX_ATTEMPTS)
    counter.raise_at = None
    again = job_cases.retry_job(stores, "count", job.id)
    assert again.status == "running" and again.error is None and again.attempts == 0
    drain()
    done = job_cases.get_job(stores, "count", job.id)
    assert done.status == "done" and done.processed == 20 and counter.calls == [0, 10, 10]


def test_only_a_failed_job_can_be_retried(runner):
    stores, _, _, _, _ = runner
    job = job_cases.start_job(stores, "count", {"upto": 20})
    with pytest.raises(Conflict) as caught:
        job_cases.retry_job(stores, "count", job.id)
    assert caught.value.code == "job_not_failed"


def test_a_replayed_dead_letter_resumes_its_failed_job(runner):
    stores, jobs, counter, deliver, drain = runner
    counter.raise_at = 0
    job = job_cases.start_job(stores, "count", {"upto": 10})
    message = jobs.sent.pop(0)
    with pytest.raises(RuntimeError):
        deliver(message, receive_count=MAX_ATTEMPTS)
    assert job_cases.get_job(stores, "count", job.id).status == "failed"
    counter.raise_at = None
    assert deliver(message)["outcome"] == "done"


def test_a_job_of_an_unknown_kind_fails_cleanly(runner):
    stores, jobs, _, deliver, _ = runner
    now = utcnow()
    jobs.create(Job(id="J1", tenant_id="t1", kind="martian", created_at=now, updated_at=now))
    outcome = deliver({"tenant_id": "t1", "kind": "martian", "job_id": "J1", "step": 0})
    assert outcome["outcome"] == "failed"
    failed = jobs.get("martian", "J1")
    assert failed.status == "failed" and "unknown job kind" in failed.error


def test_a_message_for_a_missing_job_is_dropped(runner):
    _, _, _, deliver, _ = runner
    assert deliver({"tenant_id": "t1", "kind": "count", "job_id": "nope", "step": 0}) == {"outcome": "unknown_job"}


def test_starting_a_job_id_twice_answers_the_first_and_enqueues_once(runner):
    stores, jobs, _, _, _ = runner
    first = job_cases.start_job(stores, "count", {"upto": 10}, job_id="hour-1")
    second = job_cases.start_job(stores, "count", {"upto": 99}, job_id="hour-1")
    assert second.params == first.params == {"upto": 10} and len(jobs.sent) == 1


def test_run_inline_runs_until_the_deadline_then_hands_the_rest_to_the_queue(runner):
    stores, jobs, counter, _, drain = runner
    job = job_cases.start_job(stores, "count", {"upto": 40}, enqueue=False)
    ticks = iter([False, True])
    partial = job_cases.run_inline(stores, job, lambda: next(ticks))
    assert partial.step == 2 and partial.status == "running"
    assert jobs.sent == [{"tenant_id": "t1", "kind": "count", "job_id": job.id, "step": 2}]
    drain()
    assert job_cases.get_job(stores, "count", job.id).status == "done" and counter.calls == [0, 10, 20, 30]


def test_run_inline_finishes_a_small_job_without_the_queue(runner):
    stores, jobs, _, _, _ = runner
    job = job_cases.start_job(stores, "count", {"upto": 10}, enqueue=False)
    done = job_cases.run_inline(stores, job, lambda: False)
    assert done.status == "done" and done.processed == 10 and jobs.sent == []


def test_run_inline_fails_the_job_when_a_step_raises(runner):
    stores, jobs, counter, _, _ = runner
    counter.raise_at = 0
    job = job_cases.start_job(stores, "count", {"upto": 10}, enqueue=False)
    with pytest.raises(RuntimeError):
        job_cases.run_inline(stores, job, lambda: False)
    assert job_cases.get_job(stores, "count", job.id).status == "failed"


def test_the_steps_act_for_the_actor_the_job_was_started_by(runner):
    stores, jobs, counter, _, drain = runner
    job_cases.start_job(stores, "count", {"upto": 10, "actor": "user-7"})
    drain()
    assert counter.actors == ["user-7"]


def test_errors_are_capped_and_the_rest_counted():
    now = utcnow()
    job = Job(id="J", tenant_id="t", kind="k", created_at=now, updated_at=now,
              errors=[{"row": n} for n in range(MAX_ERRORS - 2)])
    after = after_step(job, StepResult(state={}, errors=[{"row": n} for n in range(5)]), now)
    assert len(after.errors) == MAX_ERRORS and after.result["errors_dropped"] == 3


def test_step_counters_add_up_and_other_values_replace():
    now = utcnow()
    job = Job(id="J", tenant_id="t", kind="k", created_at=now, updated_at=now, result={"created": 3, "file": "a"})
    after = after_step(job, StepResult(state={"o": 1}, processed=2, result={"created": 2, "file": "b"}), now)
    assert after.result == {"created": 5, "file": "b"} and after.processed == 2 and after.state == {"o": 1}


def test_list_jobs_pages_newest_first(runner):
    stores, _, _, _, _ = runner
    ids = [job_cases.start_job(stores, "count", {"upto": 1}, job_id=f"J{n}").id for n in range(5)]
    page, after = job_cases.list_jobs(stores, "count", 3, None)
    rest, end = job_cases.list_jobs(stores, "count", 3, after)
    assert [j.id for j in page + rest] == ids[::-1] and end is None


def test_retries_back_off_and_stay_under_the_visibility_timeout():
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert delays == sorted(delays) and delays[0] >= 10 and max(delays) <= 900


def test_a_kinds_jobs_live_in_one_partition_of_their_tenant():
    from chalicelib.tables import keys

    assert keys.jobs_pk("t1", "import") == "T#t1#JOBS#import"
    with pytest.raises(ValueError):
        keys.jobs_pk("a#b", "import")
