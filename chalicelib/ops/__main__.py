"""`python -m chalicelib.ops recount|verify|segments|rescore|reindex|replay|show`: the on-call engineer's commands."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.domain.jobs import Job
    from chalicelib.ops.tenant_jobs import Started

FOLLOW_POLL = 2.0  # seconds between reads of a job followed on the runner (`show --follow`)


class UsageError(Exception):
    """The command cannot run as asked (exit code 2)."""


class NotReady(Exception):
    """What the command needs does not answer (exit code 1)."""


# --- where it runs: the local database, or the AWS the environment names -----------------------------------------

@contextmanager
def _environment(args: argparse.Namespace) -> Iterator[Any]:
    """The app on the local DynamoDB (as `python -m chalicelib.local jobs` finds it), or with `--aws` on the tables,
    queues and credentials the environment names, untouched; every job kind registered either way."""
    if args.aws:
        if os.environ.get("DYNAMODB_ENDPOINT"):
            raise UsageError("--aws talks to AWS: unset DYNAMODB_ENDPOINT (or leave --aws out to use it)")
        if not os.environ.get("TABLE_NAME"):
            raise UsageError("--aws needs TABLE_NAME (the stack's TableName output), AWS_DEFAULT_REGION and "
                             "credentials (AWS_PROFILE or the AWS_* variables)")
        from chalicelib.config import reset_settings
        from chalicelib.tables import reset_connections

        reset_settings()
        reset_connections()
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        app = importlib.import_module(args.app).app
        importlib.import_module("chalicelib.handlers.jobs")  # every job kind, as the worker registers them
        yield app
        return
    from chalicelib.local.__main__ import _local_app

    with _local_app(args.app) as app:
        importlib.import_module("chalicelib.handlers.jobs")
        yield app


def _require_table() -> None:
    from chalicelib.config import get_settings
    from chalicelib.tables import table_reachable

    if not table_reachable():
        settings = get_settings()
        raise NotReady(f"the table {settings.table_name} does not answer at "
                       f"{settings.dynamodb_endpoint or settings.region} (`make run` creates it locally; in AWS "
                       "TABLE_NAME is the stack's TableName output)")


def _tenants(args: argparse.Namespace) -> list[str]:
    from chalicelib.domain.values import is_key_id
    from chalicelib.tables.stores import Directory

    if args.all:
        return list(Directory().tenants())
    if not is_key_id(args.tenant):
        raise UsageError(f"{args.tenant!r} is no tenant id")
    # The directory is in id order: read it up to where the tenant would be (starting a job would register it).
    listed = next((t for t in Directory().tenants() if t >= args.tenant), None)
    if listed != args.tenant:
        raise UsageError(f"tenant {args.tenant!r} is not in the tenant directory (it has written nothing yet)")
    return [args.tenant]


def _follow_hint(job: Job, aws: bool) -> str:
    where = f"{job.id} --tenant {job.tenant_id} --kind {job.kind}"
    return f"python -m chalicelib.ops show {where} --follow --aws" if aws else \
        f"python -m chalicelib.local jobs show {where}"


def _retry_hint(job: Job, aws: bool) -> str:
    if not aws:
        return f"python -m chalicelib.local jobs retry {job.id} --tenant {job.tenant_id} --kind {job.kind}"
    step = json.dumps({"tenant_id": job.tenant_id, "kind": job.kind, "job_id": job.id, "step": job.step})
    return f"aws sqs send-message --queue-url \"$JOBS_QUEUE_URL\" --message-body '{step}'"  # resumes a failed job


def _runner() -> str:
    if os.environ.get("JOBS_QUEUE_URL"):
        return "the jobs queue (SQS)"
    from chalicelib import queue

    return (f"the local queue {queue.folder().root}/, delivered by a running `make run` "
            "(or `python -m chalicelib.local jobs run`)")


# --- the per-tenant commands ---------------------------------------------------------------------------------------

def _tenant_command(args: argparse.Namespace) -> int:
    with _environment(args):
        _require_table()
        tenants = _tenants(args)
        if not tenants:
            print("no tenants in the tenant directory")
            return 0
        return max(_for_tenant(args, tenant) for tenant in tenants)


def _for_tenant(args: argparse.Namespace, tenant: str) -> int:
    from chalicelib.ops.tenant_jobs import STARTERS
    from chalicelib.tables.stores import Stores

    stores = Stores(tenant)
    plan = STARTERS[args.command](stores, args.as_job)
    for note in plan.notes:
        print(f"{args.command} {tenant}: {note}")
    if args.as_job:
        for started in plan.started:
            print(f"{started.label}: job {started.job.kind} {started.job.id} started on {_runner()}")
            print(f"  follow it: {_follow_hint(started.job, args.aws)}")
        return 0
    return max((_run(stores, started, args) for started in plan.started), default=0)


def _run(stores: Any, started: Started, args: argparse.Namespace) -> int:
    from chalicelib.ops.progress import Progress
    from chalicelib.ops.runner import Interrupted, run_here, total_of

    progress = Progress(started.label, total_of(started.job), unit=started.unit)
    try:
        job = run_here(stores, started.job, progress)
    except Interrupted:
        raise  # the operator stops the command, not only this job
    except Exception as exc:  # the job is failed with its error (the last line says it; the log has the traceback)
        logging.getLogger("nexus.ops").error("job %s %s failed", started.job.kind, started.job.id, exc_info=exc)
        job = stores.jobs.get(started.job.kind, started.job.id)
    return _report(job, progress, aws=args.aws)


def _report(job: Job, progress: Any, *, aws: bool) -> int:
    """The job's last line, then its errors (a verify job's differences): 0 when it is done without any."""
    from chalicelib.domain import ops_cases
    from chalicelib.ops.tenant_jobs import difference, fails_the_command, summary

    if job.status != "done":
        progress.finish(f"{job.status}: {job.error}")
        print(f"  job {job.kind} {job.id} of {job.tenant_id} resumes from its saved step with: {_retry_hint(job, aws)}")
        return 1
    progress.finish(summary(job))
    for error in job.errors:
        print(f"  {difference(error)}")
    counted = job.result.get("differences") if job.kind in (ops_cases.VERIFY, ops_cases.RECOUNT) else None
    more = (counted if isinstance(counted, int) else len(job.errors) + job.result.get("errors_dropped", 0)) \
        - len(job.errors)
    if more > 0:
        print(f"  ... and {more:,} more, counted but not kept on the job")
    return 1 if fails_the_command(job) else 0


# --- show, replay ----------------------------------------------------------------------------------------------------

def _show(args: argparse.Namespace) -> int:
    from chalicelib.domain import job_cases
    from chalicelib.ops.progress import Progress
    from chalicelib.ops.runner import total_of
    from chalicelib.tables.stores import Stores

    with _environment(args):
        _require_table()
        stores = Stores(args.tenant)
        job = job_cases.get_job(stores, args.kind, args.id)
        if not args.follow:
            print(json.dumps(job.public(), indent=1))
            return 0
        progress = Progress(f"{job.kind} {job.id}", total_of(job))
        while job.status not in ("done", "failed"):
            progress.update(job.processed, total_of(job))
            time.sleep(FOLLOW_POLL)
            job = job_cases.get_job(stores, args.kind, args.id)
        progress.update(job.processed, total_of(job))
        return _report(job, progress, aws=args.aws)


def _replay(args: argparse.Namespace) -> int:
    from chalicelib.local.environment import data_dir
    from chalicelib.ops.replay import replay_failure_queue, replay_folder

    queue_url = args.queue_url or os.environ.get("STREAM_FAILURE_QUEUE_URL")
    if args.file and not os.path.isfile(args.file):
        raise UsageError(f"no dead-letter file {args.file}")
    if queue_url and (args.file or args.consumer):
        raise UsageError("--file and --consumer name dead-letter files: not with a failure queue")
    if args.aws and not queue_url:
        raise UsageError("in AWS the failed records wait in the stream's failure queue: set STREAM_FAILURE_QUEUE_URL "
                         "(the stack's StreamFailureQueueUrl output) or pass --queue-url")
    if args.drop_expired and not queue_url:
        raise UsageError("--drop-expired is for the failure queue (STREAM_FAILURE_QUEUE_URL or --queue-url)")
    with _environment(args) as app:
        if queue_url:
            _require_table()
            return replay_failure_queue(queue_url, drop_gone=args.drop_expired, out=sys.stdout)
        return replay_folder(app, data_dir() / "dead-letters", consumer=args.consumer, file=args.file,
                             out=sys.stdout)


# --- the command line ----------------------------------------------------------------------------------------------

COMMANDS = {
    "recount": "recount the tenant's counters and chips from the items they count",
    "verify": "check the tenant's derived data; print every difference (exit 1 when there is any)",
    "segments": "rebuild the memberships of every active dynamic segment (a refresh job per segment)",
    "rescore": "rescore every client (health, lead score) and prune the new-clients list",
    "reindex": "write the lookup keys (email, VAT number, ...) of every client again",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--aws", action="store_true",
                       help="use the environment as it is (TABLE_NAME, AWS_PROFILE...), not the local DynamoDB")
    where.add_argument("--app", default="app", help="module holding the Chalice `app` (default: app)")
    for name, text in COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text, parents=[where])
        who = command.add_mutually_exclusive_group(required=True)
        who.add_argument("--tenant", help="one tenant")
        who.add_argument("--all", action="store_true", help="every tenant of the tenant directory")
        command.add_argument("--as-job", action="store_true",
                             help="only start the job on the job runner and print how to follow it")
        command.set_defaults(func=_tenant_command)

    text = "apply dead-lettered stream records again (the local folder, or the OnFailure queue in AWS)"
    replay = commands.add_parser("replay", help=text, description=text, parents=[where])
    replay.add_argument("--consumer", default=None, help="only this handler's dead letters (default: all)")
    replay.add_argument("--file", default=None, help="only this dead-letter file")
    replay.add_argument("--queue-url", default=None,
                        help="the stream's failure queue (default: $STREAM_FAILURE_QUEUE_URL; unset: the folder)")
    replay.add_argument("--drop-expired", action="store_true",
                        help="delete messages whose records the stream no longer holds (after the rebuilds)")
    replay.set_defaults(func=_replay)

    text = "show a job as JSON, or follow its progress until it ends (--follow)"
    show = commands.add_parser("show", help=text, description=text, parents=[where])
    show.add_argument("id")
    show.add_argument("--tenant", required=True)
    show.add_argument("--kind", required=True)
    show.add_argument("--follow", action="store_true", help="print its progress until it is done or failed")
    show.set_defaults(func=_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (2), printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    from chalicelib import telemetry

    telemetry.configure_commands()
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.domain.errors import DomainError
    from chalicelib.local.dynamodb_local import DynamoDBLocalError
    from chalicelib.ops.runner import Interrupted

    try:
        return args.func(args)
    except UsageError as exc:
        print(f"python -m chalicelib.ops {args.command}: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        job = exc.job
        print(f"\ninterrupted: job {job.kind} {job.id} of {job.tenant_id} stopped at step {job.step} "
              f"({job.processed:,} done); resume it on the job runner: {_retry_hint(job, args.aws)}", file=sys.stderr)
        return 1
    except (DomainError, DynamoDBLocalError, NotReady) as exc:
        print(f"python -m chalicelib.ops {args.command}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:  # without --aws the credentials are the local run's fake ones
        print(f"python -m chalicelib.ops {args.command}: {exc}" + ("" if args.aws else " (for AWS, add --aws)"),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
