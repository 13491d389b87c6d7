"""The local run: the Chalice app over HTTP on DynamoDB Local, with stream pump, scheduler, job worker and inbox."""
from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from chalicelib import telemetry
from chalicelib.handlers import cors, errors
from chalicelib.local.dynamodb_local import DEFAULT_RUN_PORT, DynamoDBLocal
from chalicelib.local.environment import apply_local_defaults, chalice_config
from chalicelib.local.inbox_watcher import InboxWatcher
from chalicelib.local.job_queue import JobQueueWorker, sqs_sources
from chalicelib.local.lambda_runtime import event_sources, inbound_function
from chalicelib.local.scheduler import Scheduler
from chalicelib.local.stream_pump import StreamPump

log = logging.getLogger("nexus.local")


class RouteNotFound(LocalGatewayException):
    CODE = 404


class NexusLocalGateway(LocalGateway):
    """API Gateway as chalice fakes it, except that an unknown route is our 404 envelope, not a 403."""

    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            return super()._generate_lambda_event(method, path, headers, body)
        except ValueError:  # chalice's RouteMatcher: no route matches the path
            # As API Gateway's own 404 in the template: the envelope, a request id and CORS headers.
            answer = errors.envelope(404, "not_found", f"No route for {method} {urlsplit(path).path}")
            origin = next((v for k, v in (headers or {}).items() if k.lower() == "origin"), None)
            answer = cors.with_cors(errors.normalise(answer, str(uuid.uuid4())), origin)
            raise RouteNotFound(answer.headers, answer.body.encode()) from None


class NexusRequestHandler(ChaliceRequestHandler):
    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Config) -> None:
        self.local_gateway = NexusLocalGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> (TRACE, CONNECT, anything) with its own 501 page; the
        # app answers it like any method the route lacks: 405 in the envelope, with Allow.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)


class BacklogServer(ThreadedHTTPServer):
    """socketserver's listen backlog of 5 resets bursts of concurrent clients; API Gateway queues them."""

    request_queue_size = 128


def make_server(app: Any, host: str, port: int, config: Config | None = None) -> LocalDevServer:
    """A threaded LocalDevServer bound to host:port (binding happens here, so a busy port fails early)."""
    # As chalice.local.create_local_server does: make current_request thread-local for the threaded server.
    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config or Config.create(app_name=getattr(app, "app_name", "app")), host, port,
                          handler_cls=NexusRequestHandler, server_cls=BacklogServer)


class Workers:
    """The non-HTTP event sources of the app, started and stopped together."""

    def __init__(self, app: Any, settings: Any) -> None:
        data = Path(settings.data_dir)
        self.parts: list[Any] = []
        streams = event_sources(app, "dynamodb")
        if not streams:
            log.warning("the app registers no @app.on_dynamodb_record handler: stream records are not delivered")
        for source in streams:
            self.parts.append(StreamPump(
                source.handler, table_name=settings.table_name, endpoint_url=settings.dynamodb_endpoint,
                region=settings.region, checkpoint_path=data / "stream-checkpoints.json", consumer=source.name,
                batch_size=getattr(source.config, "batch_size", 100) or 100))
        self.parts.append(Scheduler.for_app(app, settings.region))
        for source in sqs_sources(app):
            if settings.jobs_queue_url:
                log.warning("JOBS_QUEUE_URL is set: jobs go to %s, and %s is not run here", settings.jobs_queue_url,
                            source.name)
                continue
            from chalicelib.queue import FolderQueue

            self.parts.append(JobQueueWorker(source, FolderQueue(data / "jobs"), region=settings.region))
        inbound = inbound_function(app)
        if inbound is not None:
            self.parts.append(InboxWatcher(
                inbound.handler, inbox_dir=data / "inbound", s3_local_dir=settings.s3_local_dir,
                bucket=settings.inbound_email_bucket, region=settings.region, prefix="inbound/",
                function_name=inbound.name))
        for source in event_sources(app, "s3"):
            if source.config.bucket != settings.inbound_email_bucket:
                log.warning("S3 handler %s listens to bucket %s, INBOUND_EMAIL_BUCKET is %s; using %s",
                            source.name, source.config.bucket, settings.inbound_email_bucket, source.config.bucket)
            self.parts.append(InboxWatcher(
                source.handler, inbox_dir=data / "inbound", s3_local_dir=settings.s3_local_dir,
                bucket=source.config.bucket, region=settings.region, prefix=source.config.prefix or "inbound/",
                function_name=source.name))

    def start(self) -> Workers:
        for part in self.parts:
            part.start()
        return self

    def stop(self) -> None:
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %s failed", type(part).__name__)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _banner(host: str, port: int, settings: Any, ddb: DynamoDBLocal | None) -> str:
    from chalicelib.tokens import mint_token

    token = mint_token("demo", ["admin"], sub="local-admin", name="Local Admin")
    base = f"http://{host}:{port}"
    return "\n".join([
        f"NexusRMS Client Management serving on {base}",
        f"  DynamoDB: {settings.dynamodb_endpoint}" + (" (DynamoDB Local, started here)" if ddb else " (given)"),
        f"  table {settings.table_name}; data in {settings.data_dir}/; outbox {settings.outbox_dir}/",
        f"  logs: this console ({settings.log_format}; LOG_FORMAT=text|json) and {settings.log_file} (JSON lines); "
        f"metrics (EMF): {settings.metrics_file}",
        f"  dead letters: {Path(settings.data_dir) / 'dead-letters'}/ (stream) and {Path(settings.data_dir) / 'jobs'}"
        "/dead/ (jobs); replay: `python -m chalicelib.ops replay`",
        f"  drop .eml files in {Path(settings.data_dir) / 'inbound'}/ to receive email",
        f"  jobs queue in {Path(settings.data_dir) / 'jobs'}/ (see `python -m chalicelib.local jobs list`)",
        f"  secrets (unless given in the environment) in {settings.data_dir}/: secret, node-webhook-secret, "
        "portal-token-secret, cursor-secret",
        "  staff token (tenant demo, roles admin; mint others with `make token`):",
        f"  {token}",
        f"  try: curl -H 'Authorization: Bearer <token>' {base}/v1/clients",
        "Ctrl-C stops everything.",
    ])


def run(host: str | None = None, port: int | None = None, app_module: str = "app",
        project_dir: str | os.PathLike | None = None, stage: str = "dev") -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code."""
    project = Path(project_dir or os.getcwd()).resolve()
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))
    apply_local_defaults(os.environ)
    host = host or os.environ.get("HOST") or "127.0.0.1"
    port = int(port or os.environ.get("PORT") or 8000)

    from chalicelib.config import get_settings, reset_settings
    from chalicelib.tables import create_table, reset_connections

    reset_settings()
    telemetry.reset()
    telemetry.configure(root=True)  # every logger: the same JSON lines as in AWS (LOG_FORMAT=text for people)
    app = importlib.import_module(app_module).app
    config = Config(chalice_stage=stage, config_from_disk=chalice_config(project),
                    default_params={"project_dir": str(project), "app_name": app.app_name})
    server = make_server(app, host, port, config)
    ddb = workers = None
    if threading.current_thread() is threading.main_thread():
        # Explicit for SIGINT too: a shell starting us in the background would otherwise leave it ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise_interrupt)
    try:
        if not os.environ.get("DYNAMODB_ENDPOINT"):
            data = Path(os.environ["DATA_DIR"])
            ddb = DynamoDBLocal(port=int(os.environ.get("DYNAMODB_LOCAL_PORT") or DEFAULT_RUN_PORT),
                                db_path=data / "ddb", log_path=data / "ddb" / "dynamodb-local.log").start()
            os.environ["DYNAMODB_ENDPOINT"] = ddb.endpoint
        reset_settings()
        reset_connections()
        settings = get_settings()
        try:
            create_table()
        except Exception as exc:  # an unreachable DYNAMODB_ENDPOINT is the usual cause: say so, not a traceback
            print(f"cannot create table {settings.table_name} at {settings.dynamodb_endpoint}: {exc}",
                  file=sys.stderr)
            return 1
        workers = Workers(app, settings).start()
        print(_banner(host, server.server.server_address[1], settings, ddb), flush=True)
        server.server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server.server_close()
        if workers is not None:
            workers.stop()
        if ddb is not None:
            ddb.stop()
            os.environ.pop("DYNAMODB_ENDPOINT", None)
    return 0
