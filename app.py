"""Wiring only: the Chalice app, its blueprints, middleware and the Lambda event entry points."""
from __future__ import annotations

import importlib
import os
from typing import Any

from chalice import Chalice, Rate

from chalicelib.handlers import cors, edge
from chalicelib.handlers.api import (
    bulk,
    categories,
    clients,
    communications,
    contacts,
    duplicates,
    exports,
    imports,
    integrations,
    overview,
    portal,
    scores,
    segments,
    service,
    settings,
    webhooks,
    workspace,
)
from chalicelib.tables.base import request_budget

app = Chalice(app_name="nexus-client-management")
# CSV travels as bytes: an imported file in any encoding arrives intact (base64 through API Gateway), and an export
# answer is returned as bytes too (API Gateway decodes it for callers whose Accept names text/csv).
app.api.binary_types = ["text/csv", "application/csv", "application/vnd.ms-excel", "application/octet-stream"]

for blueprint in (service.bp, bulk.bp, exports.bp, imports.bp, duplicates.bp, clients.bp, contacts.bp,
                  communications.bp, categories.bp, segments.bp, scores.bp, overview.bp, workspace.bp,
                  integrations.bp, portal.bp, settings.bp, webhooks.bp):
    app.register_blueprint(blueprint)


cors.register_preflights(app)  # after every blueprint: one OPTIONS view per route path


@app.middleware("http")
def around_requests(event, get_response):
    """Every answer: its request id, the error envelope, CORS, and the request's log line and metrics."""
    return edge.handle(event, get_response)


@app.middleware("http")
def database_budget(event, get_response):
    """The database calls of one request share DB_RETRY_BUDGET, so it answers before API Gateway gives up."""
    with request_budget():
        return get_response(event)


# The stream ARN is only known once the table exists; the packaged template fills it in (see README).
_STREAM_ARN = os.environ.get(
    "TABLE_STREAM_ARN",
    "arn:aws:dynamodb:eu-west-1:000000000000:table/nexus-client-management/stream/1970-01-01T00:00:00.000")


# The event handlers' modules are imported by the function that runs them, not by the API's cold start.
_EVENT_MODULES = ("events", "jobs", "stream")


def __getattr__(name: str) -> Any:
    if name in _EVENT_MODULES:
        return importlib.import_module(f"chalicelib.handlers.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@app.on_dynamodb_record(stream_arn=_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def on_table_stream(event):
    from chalicelib.handlers import stream

    return stream.handle_stream_batch(list(event))


# The schedules only fan out: one job per tenant, with ids fixed by the schedule's time (a duplicate starts nothing).
@app.schedule(Rate(1, unit=Rate.HOURS))
def refresh_segments(event):
    from chalicelib.handlers import events

    return events.refresh_segments(getattr(event.context, "get_remaining_time_in_millis", None),
                                   events.scheduled_at(event.to_dict()))


@app.schedule(Rate(1, unit=Rate.DAYS))
def recalculate_scores(event):
    from chalicelib.handlers import events

    return events.recalculate_scores(getattr(event.context, "get_remaining_time_in_millis", None),
                                     events.scheduled_at(event.to_dict()))


# The job runner's worker: one message (one bounded step of a job) per invocation; the packaged template declares
# the queue, its dead-letter queue and the trigger's concurrency.
@app.on_sqs_message(queue=os.environ.get("JOBS_QUEUE_NAME", "nexus-client-management-jobs"), batch_size=1)
def run_jobs(event):
    from chalicelib.handlers import jobs

    return jobs.run_jobs(list(event), event.context)


# A plain Lambda: its S3 trigger on INBOUND_EMAIL_BUCKET is declared in deploy/resources.json, because CloudFormation
# (`chalice package`) cannot add notifications to a bucket Chalice does not create.
@app.lambda_function(name="on_inbound_email")
def on_inbound_email(event, context):
    from chalicelib.handlers import events

    return events.handle_s3_records(event)
