"""Routes of a client's follow-up tasks and of its links to other clients (associations)."""
from __future__ import annotations

from typing import Annotated, Any

from chalice import Blueprint, Response

from chalicelib.domain import association_cases, task_cases
from chalicelib.domain.associations import LinkView, link_order
from chalicelib.domain.tasks import NOT_NULL, Task, TaskStatus, order_key
from chalicelib.handlers.fields import Date, Id, ListQuery, Strict, Text, out_model, page_of, patch_of
from chalicelib.handlers.pagination import page_of_list, query_scope
from chalicelib.handlers.routing import Ctx, api, json_response

bp = Blueprint(__name__)
TASKS = "/v1/clients/{client_id}/tasks"
LINKS = "/v1/clients/{client_id}/associations"


class TaskCreate(Strict):
    title: Annotated[str, Text(200, 1)]
    due_date: Date | None = None
    assignee_id: Id | None = None
    status: TaskStatus = "open"


TaskUpdate = patch_of("TaskUpdate", TaskCreate, not_null=NOT_NULL)
TaskOut = out_model("Task", Task)


class TaskListQuery(ListQuery):
    status: TaskStatus | None = None


class AssociationIn(Strict):
    related_id: Id
    role: Annotated[str, Text(50, 1)] | None = None


AssociationOut = out_model("Association", LinkView)


@api(bp, "GET", TASKS, summary="List a client's tasks: open ones by due date (none last), then done ones",
     tag="tasks", query=TaskListQuery, response=page_of(TaskOut), list_response=True)
def list_tasks(ctx: Ctx, client_id: str) -> dict[str, Any]:
    params = ctx.query()
    tasks = task_cases.list_tasks(ctx.stores(), client_id, params.status)
    page, next_cursor = page_of_list(tasks, order_key, tenant_id=ctx.tenant_id, limit=params.limit,
                                     scope=query_scope(f"tasks:{client_id}", {"status": params.status}),
                                     cursor=params.cursor)
    return {"items": [t.public() for t in page], "next_cursor": next_cursor}


@api(bp, "POST", TASKS, summary="Add a follow-up task to a client", need="agent", tag="tasks", body=TaskCreate,
     response=TaskOut, status=201, idempotent=True)
def create_task(ctx: Ctx, client_id: str) -> dict[str, Any]:
    data = ctx.body().model_dump(exclude_none=True)
    return task_cases.create_task(ctx.stores(), client_id, data, actor=ctx.actor).public()


@api(bp, "PATCH", TASKS + "/{task_id}", summary="Update the named fields of a task (done stamps completed_at)",
     need="agent", tag="tasks", body=TaskUpdate, response=TaskOut)
def update_task(ctx: Ctx, client_id: str, task_id: str) -> dict[str, Any]:
    return task_cases.update_task(ctx.stores(), client_id, task_id, ctx.changes(), actor=ctx.actor).public()


@api(bp, "GET", LINKS, summary="The clients linked to this one, by name", tag="associations",
     query=ListQuery, response=page_of(AssociationOut), list_response=True)
def list_associations(ctx: Ctx, client_id: str) -> dict[str, Any]:
    params = ctx.query()
    views = association_cases.links_of(ctx.stores(), client_id)
    page, next_cursor = page_of_list(views, link_order, tenant_id=ctx.tenant_id,
                                     scope=query_scope(f"associations:{client_id}", {}), limit=params.limit,
                                     cursor=params.cursor)
    return {"items": [v.model_dump(mode="json") for v in page], "next_cursor": next_cursor}


@api(bp, "POST", LINKS, summary="Link a client to another (posting an existing link again sets its role)",
     need="agent", tag="associations", body=AssociationIn, response=AssociationOut, status=201, idempotent=True,
     also={200: "Already linked: the link, with the role posted now."})
def link_clients(ctx: Ctx, client_id: str) -> Response:
    body = ctx.body()
    view, created = association_cases.link(ctx.stores(), client_id, body.related_id, body.role, actor=ctx.actor)
    return json_response(view.model_dump(mode="json"), 201 if created else 200)


@api(bp, "DELETE", LINKS + "/{related_id}", summary="Unlink two clients (from both sides)", need="agent",
     tag="associations", status=204)
def unlink_clients(ctx: Ctx, client_id: str, related_id: str) -> Response:
    association_cases.unlink(ctx.stores(), client_id, related_id)
    return Response(body="", status_code=204)
