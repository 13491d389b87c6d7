"""Client import on DynamoDB Local: 1,000 rows in the request, a 10,000-row dry run, 10,000 rows as a job."""
from __future__ import annotations

import os

from bench.common import Bench, run_jobs

CSV = {"Content-Type": "text/csv"}
HEADER = "Company Name,E-mail,VAT,Phone,Billing City,Billing Country,Tags,Status"


def csv_file(start: int, count: int) -> bytes:
    """`count` clients, each with its own email and VAT number (an import skips duplicates by either)."""
    lines = [HEADER]
    for n in range(start, start + count):
        lines.append(f"Client {n} B.V.,client{n}@bench.test,NL{n:09d}B01,+31 20 {n:07d},Amsterdam,NL,"
                     f"bench|wave{n % 7},{'lead' if n % 3 else 'active'}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _import(b: Bench, raw: bytes, dry_run: bool = False) -> dict:
    answer = b.call("POST", "/v1/clients/import" + ("?dry_run=true" if dry_run else ""), data=raw, headers=CSV)
    if answer.status_code not in (200, 202):
        raise AssertionError(f"import answered {answer.status_code}: {answer.text[:500]}")
    return answer.json()


def _until_done(b: Bench, raw: bytes) -> dict:
    started = _import(b, raw)
    assert started["status"] in ("queued", "running"), started
    run_jobs()
    job = b.call("GET", f"/v1/imports/{started['id']}").json()
    assert job["status"] == "done", job
    return job


def run(b: Bench) -> None:
    from chalicelib.config import reset_settings

    # The raw file of a job-run import is kept in object storage: a folder here, as in the local run.
    os.environ["S3_LOCAL_DIR"] = os.path.join(os.environ["DATA_DIR"], "s3")
    reset_settings()

    small = csv_file(0, 1_000)
    done = b.measure("import 1,000 rows (in the request)", 1_000, lambda: _import(b, small))
    assert done["created"] == 1_000, {k: done[k] for k in ("created", "skipped_duplicates")}
    other = csv_file(20_000, 1_000)
    done = b.measure("import 1,000 other rows (in the request)", 1_000, lambda: _import(b, other),
                     notes="the time a caller waits", traced=False)
    assert done["created"] == 1_000, done["created"]
    again = b.measure("import the same 1,000 rows again", 1_000, lambda: _import(b, small),
                      notes="all skipped as duplicates")
    assert again["created"] == 0 and again["skipped_duplicates"] == 1_000

    large = csv_file(100_000, 10_000)
    dry = b.measure("dry run of 10,000 rows", 10_000, lambda: _import(b, large, dry_run=True),
                    notes="reads only: validation, lookups by key")
    assert dry["created"] == 10_000, dry["created"]

    job = b.measure("import 10,000 rows (job, until done)", 10_000, lambda: _until_done(b, large),
                    notes="202, then the worker's steps of 500 rows")
    assert job["created"] == 10_000, job["created"]
