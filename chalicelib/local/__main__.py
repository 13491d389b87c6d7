"""`python -m chalicelib.local run|token|webhook|replay|jobs|ddb`: the local server and its operator commands."""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import shlex
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib.local.dynamodb_local import (
    DEFAULT_RUN_PORT,
    DynamoDBLocal,
    DynamoDBLocalError,
    ensure_emulator,
    find_java,
    port_in_use,
)
from chalicelib.local.environment import (
    DEFAULTS,
    GENERATED_SECRETS,
    apply_local_defaults,
    data_dir,
    persisted_secret,
)


def _run(args: argparse.Namespace) -> int:
    from chalicelib.local.server import run

    return run(host=args.host, port=args.port, app_module=args.app)


def local_secret(name: str) -> str:
    """The secret the local server uses: the environment's, else the one persisted under DATA_DIR (made if needed)."""
    if not os.environ.get(name):
        filename, make = GENERATED_SECRETS[name]
        os.environ[name] = persisted_secret(data_dir() / filename, make)
    return os.environ[name]


def _token(args: argparse.Namespace) -> int:
    local_secret("AUTH_JWT_SECRET")
    os.environ.setdefault("AUTH_ISSUER", DEFAULTS["AUTH_ISSUER"])
    from chalicelib.config import reset_settings
    from chalicelib.tokens import mint_token

    reset_settings()
    portal = args.scope == "portal" or args.client_id is not None
    roles: list[str] | None
    if args.role is not None:
        roles = [r.strip() for r in args.role.split(",") if r.strip()]
    else:
        roles = None if portal else ["admin"]
    if portal and not args.client_id:
        print("a portal token needs --client-id", file=sys.stderr)
        return 2
    kwargs = {"sub": args.sub, "client_id": args.client_id, "scope": "portal" if portal else args.scope}
    if args.ttl:
        kwargs["ttl"] = args.ttl
    print(mint_token(args.tenant, roles, **kwargs))
    return 0


def sign_webhook(secret: str, body: bytes, webhook_id: str | None = None,
                 now: dt.datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of `body`, exactly as the Node platform sends them."""
    from standardwebhooks.webhooks import Webhook

    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    now = now or dt.datetime.now(dt.UTC)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, now, body.decode())}


def _webhook(args: argparse.Namespace) -> int:
    try:
        body = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    headers = {"Content-Type": "application/json", **sign_webhook(local_secret("NODE_WEBHOOK_SECRET"), body, args.id)}
    host = os.environ.get("HOST") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # serving on every interface: post to this one
    url = args.url or f"http://{host}:{os.environ.get('PORT') or 8000}/v1/webhooks/node"
    if args.print:
        parts = ["curl", "-s", "-X", "POST", url, *[a for k, v in headers.items() for a in ("-H", f"{k}: {v}")],
                 "--data-binary", f"@{args.file}"]
        print(" ".join(shlex.quote(p) for p in parts))  # valid for 5 minutes: the signature carries the time
        return 0
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, reason, answer = response.status, response.reason, response.read()
    except urllib.error.HTTPError as exc:
        status, reason, answer = exc.code, exc.reason, exc.read()
    except urllib.error.URLError as exc:
        print(f"cannot reach {url} ({exc.reason}); is `make run` serving there?", file=sys.stderr)
        return 1
    print(f"{status} {reason} (webhook-id {headers['webhook-id']})")
    print(answer.decode(errors="replace"))
    return 0 if status < 300 else 1


@contextmanager
def _database(base: Path) -> Iterator[None]:
    """DYNAMODB_ENDPOINT as given, else the DynamoDB Local of a running `make run`, else one started on DATA_DIR."""
    if os.environ.get("DYNAMODB_ENDPOINT"):
        yield
        return
    port = int(os.environ.get("DYNAMODB_LOCAL_PORT") or DEFAULT_RUN_PORT)
    if port_in_use(port):
        os.environ["DYNAMODB_ENDPOINT"] = f"http://127.0.0.1:{port}"
        yield
        return
    ddb = DynamoDBLocal(port=port, db_path=base / "ddb", log_path=base / "ddb" / "dynamodb-local.log").start()
    os.environ["DYNAMODB_ENDPOINT"] = ddb.endpoint
    try:
        yield
    finally:
        ddb.stop()


def _replay(args: argparse.Namespace) -> int:
    from chalicelib.local.dead_letters import DeadLetters, replay

    base = apply_local_defaults(os.environ)
    folder = base / "dead-letters"
    letters = [DeadLetters.read(args.file)] if args.file else DeadLetters(folder).list(args.consumer)
    if not letters:
        print(f"nothing to replay in {folder}/")
        return 0
    with _database(base):
        from chalicelib.config import reset_settings
        from chalicelib.local.lambda_runtime import event_sources
        from chalicelib.tables import reset_connections

        reset_settings()
        reset_connections()
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # the app module of the project, as `run` finds it
        app = importlib.import_module(args.app).app
        # The same handlers the server's stream pumps call, found the same way.
        ok, failed = replay(letters, {s.name: s.handler for s in event_sources(app, "dynamodb")})
    print(f"replayed {ok}, {failed} failed" + (f" (kept in {folder}/; see the log above)" if failed else ""))
    return 1 if failed else 0


@contextmanager
def _local_app(app_module: str) -> Iterator[object]:
    """The app on the local database (as `replay` finds it), for commands that read or run jobs."""
    base = apply_local_defaults(os.environ)
    with _database(base):
        from chalicelib.config import reset_settings
        from chalicelib.tables import reset_connections

        reset_settings()
        reset_connections()
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        yield importlib.import_module(app_module).app  # importing it registers every job kind


def _jobs(args: argparse.Namespace) -> int:
    with _local_app(args.app) as app:
        from chalicelib import queue
        from chalicelib.domain.errors import DomainError

        try:
            return _JOB_COMMANDS[args.jobs_command](args, app, queue.folder())
        except DomainError as exc:
            print(exc.message, file=sys.stderr)
            return 1


def _jobs_list(args: argparse.Namespace, app: object, folder) -> int:
    from chalicelib.domain import job_cases
    from chalicelib.handlers.events import SYSTEM_TENANT
    from chalicelib.tables.stores import Stores
    from chalicelib.tables.tenants import all_tenants

    # Every tenant (and the schedules' fan-outs) by key: the tenant directory, then each one's job partitions.
    tenants = [args.tenant] if args.tenant else [SYSTEM_TENANT, *all_tenants()]
    kinds = [args.kind] if args.kind else job_cases.kinds()
    found = sorted((job for tenant in tenants for kind in kinds
                    for job in job_cases.list_jobs(Stores(tenant), kind, args.limit, None)[0]),
                   key=lambda job: job.created_at, reverse=True)
    for job in found[:args.limit]:
        progress = f"{job.processed}/{job.total}" if job.total is not None else str(job.processed)
        print(f"{job.created_at:%Y-%m-%d %H:%M:%S}  {job.status:<7}  {job.tenant_id:<12} {job.kind:<24} {job.id}  "
              f"step {job.step}  processed {progress}" + (f"  error: {job.error}" if job.error else ""))
    if not found:
        print("no jobs")
    counts = folder.counts()
    print(f"queue {folder.root}/: {counts['pending']} pending, {counts['inflight']} in flight, "
          f"{counts['dead']} dead letters" + (" (`jobs replay` runs them again)" if counts["dead"] else ""))
    return 0


def _jobs_show(args: argparse.Namespace, app: object, folder) -> int:
    import json

    from chalicelib.domain import job_cases
    from chalicelib.tables.stores import Stores

    print(json.dumps(job_cases.get_job(Stores(args.tenant), args.kind, args.id).public(), indent=1))
    return 0


def _jobs_retry(args: argparse.Namespace, app: object, folder) -> int:
    from chalicelib.domain import job_cases
    from chalicelib.tables.stores import Stores

    job = job_cases.retry_job(Stores(args.tenant), args.kind, args.id)
    print(f"job {job.id} queued again at step {job.step}")
    return 0 if args.no_run else _drain(app, folder)


def _jobs_replay(args: argparse.Namespace, app: object, folder) -> int:
    letters = [d for d in folder.dead_letters() if args.id in (None, d.id)]
    if not letters:
        print(f"no dead letters in {folder.dead}/")
        return 0 if args.id is None else 1
    for letter in letters:
        folder.redrive(letter.id)
        print(f"dead letter {letter.id} back on the queue: {letter.body}")
    return 0 if args.no_run else _drain(app, folder)


def _jobs_start(args: argparse.Namespace, app: object, folder) -> int:
    import json

    from chalicelib.domain import job_cases
    from chalicelib.tables.stores import Stores

    if args.kind not in job_cases.kinds():
        print(f"unknown job kind {args.kind!r}; known: {', '.join(job_cases.kinds())}", file=sys.stderr)
        return 2
    try:
        params = json.loads(args.params)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        print("--params must be a JSON object", file=sys.stderr)
        return 2
    job = job_cases.start_job(Stores(args.tenant), args.kind, params, job_id=args.id)
    print(f"job {job.kind} {job.id} of tenant {job.tenant_id}: {job.status}")
    return 0 if args.no_run or os.environ.get("JOBS_QUEUE_URL") else _drain(app, folder)


def _jobs_run(args: argparse.Namespace, app: object, folder) -> int:
    return _drain(app, folder)


def _drain(app: object, folder) -> int:
    """Deliver every visible message to the app's run_jobs here, as the server's worker does."""
    from chalicelib.local.job_queue import deliver, sqs_sources

    [source] = sqs_sources(app)
    ok = failed = 0
    while got := folder.receive(1):
        if deliver(folder, got[0], source.handler, queue_name=source.config.queue, region="eu-west-1",
                   function_name=source.name):
            ok += 1
        else:
            failed += 1
    print(f"delivered {ok} job messages, {failed} failed" + (" (they come back after their backoff; see the log)"
                                                             if failed else ""))
    return 1 if failed else 0


_JOB_COMMANDS = {"list": _jobs_list, "show": _jobs_show, "retry": _jobs_retry, "replay": _jobs_replay,
                 "run": _jobs_run, "start": _jobs_start}


def _ddb(args: argparse.Namespace) -> int:
    print(f"DynamoDB Local is in {ensure_emulator()}")
    find_java()  # fetched fine, but say now if it could not run
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the API on HOST:PORT with DynamoDB Local and the event sources")
    run.add_argument("--host", default=None, help="default: $HOST or 127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    run.add_argument("--app", default="app", help="module holding the Chalice `app` (default: app)")
    run.set_defaults(func=_run)

    token = commands.add_parser("token", help="print a bearer token signed with the local secret")
    token.add_argument("--tenant", default="demo")
    token.add_argument("--role", default=None, help="comma list, e.g. admin or agent,viewer (default: admin)")
    token.add_argument("--sub", default=None, help="user id (contact id for portal tokens)")
    token.add_argument("--client-id", default=None, help="portal token for this client")
    token.add_argument("--scope", default=None, choices=["portal"])
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    token.set_defaults(func=_token)

    webhook = commands.add_parser("webhook", help="sign a JSON file as a Node webhook and POST it to the local server")
    webhook.add_argument("file", help="the event, e.g. {\"type\": \"client.linked\", ...}")
    webhook.add_argument("--id", default=None, help="webhook-id (default: a new one; repeat one to see a duplicate)")
    webhook.add_argument("--url", default=None, help="default: http://$HOST:$PORT/v1/webhooks/node")
    webhook.add_argument("--print", action="store_true", help="print a curl command instead of posting")
    webhook.set_defaults(func=_webhook)

    replay = commands.add_parser("replay", help="hand dead-lettered stream records to the app's handler again")
    replay.add_argument("--consumer", default=None, help="only this handler's records (default: all)")
    replay.add_argument("--file", default=None, help="only this dead-letter file")
    replay.add_argument("--app", default="app", help="module holding the Chalice `app` (default: app)")
    replay.set_defaults(func=_replay)

    jobs = commands.add_parser("jobs", help="see the jobs, retry a failed one, replay dead letters of the job queue")
    jobs.add_argument("--app", default="app", help="module holding the Chalice `app` (default: app)")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = job_commands.add_parser("list", help="the newest jobs (every tenant and kind unless named)")
    listing.add_argument("--tenant", default=None)
    listing.add_argument("--kind", default=None)
    listing.add_argument("--limit", type=int, default=20)
    for name, text in (("show", "one job as JSON"), ("retry", "run a failed job again from the step it failed")):
        one = job_commands.add_parser(name, help=text)
        one.add_argument("id")
        one.add_argument("--tenant", required=True)
        one.add_argument("--kind", required=True)
        if name == "retry":
            one.add_argument("--no-run", action="store_true", help="only enqueue it (a running server runs it)")
    start = job_commands.add_parser("start", help="start a job of a kind (e.g. reindex_clients) for a tenant")
    start.add_argument("kind")
    start.add_argument("--tenant", required=True)
    start.add_argument("--params", default="{}", help="the job's parameters as a JSON object (default: {})")
    start.add_argument("--id", default=None, help="a job id: starting the same id again starts nothing")
    start.add_argument("--no-run", action="store_true", help="only enqueue it (a running server runs it)")
    replay_jobs = job_commands.add_parser("replay", help="put dead letters back on the queue and run them")
    replay_jobs.add_argument("--id", default=None, help="only this message (default: every dead letter)")
    replay_jobs.add_argument("--no-run", action="store_true", help="only enqueue them (a running server runs them)")
    job_commands.add_parser("run", help="deliver every queued job message here, as the server's worker does")
    jobs.set_defaults(func=_jobs)

    ddb = commands.add_parser("ddb", help="fetch DynamoDB Local into .cache/ and check for Java")
    ddb.set_defaults(func=_ddb)

    args = parser.parse_args(argv)
    from chalicelib import telemetry

    telemetry.configure_commands()
    try:
        return args.func(args)
    except DynamoDBLocalError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
