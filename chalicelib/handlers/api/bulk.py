"""Bulk routes (issue 13): one action on up to 500 clients, answered with a result per id."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from chalice import Blueprint
from pydantic import Field, ValidationError

from chalicelib.domain import bulk_cases
from chalicelib.domain.errors import ValidationFailed
from chalicelib.handlers import errors
from chalicelib.handlers.api.clients import ClientUpdate
from chalicelib.handlers.errors import InvalidJson
from chalicelib.handlers.fields import Id, Model, Root, Strict, Tag
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.stores import holding

bp = Blueprint(__name__)

ClientIds = Annotated[list[Id], Field(min_length=1, max_length=bulk_cases.MAX_IDS, description=(
    f"1 to {bulk_cases.MAX_IDS} client ids; the answer has one result per id, in this order. A repeated id is "
    "changed once and answered at each place it appears."))]


class BulkStatusParams(Strict):
    status: Literal["lead", "trial", "active", "inactive"] = Field(
        description="As PATCH takes it: `archived` is reached with the `archive` action.")


class BulkCategoryParams(Strict):
    category_id: Id


class BulkTagParams(Strict):
    tag: Tag = Field(description="Compared ignoring case, like the `tag` filter.")


class BulkSegmentParams(Strict):
    segment_id: Id = Field(description="A static segment (members of a dynamic one come from its criteria).")


class BulkNoParams(Strict):
    """`archive` and `restore` take no params: `{}` or left out."""


class _Bulk(Strict):
    client_ids: ClientIds


class BulkChangeStatus(_Bulk):
    action: Literal["change_status"]
    params: BulkStatusParams


class BulkArchive(_Bulk):
    action: Literal["archive"]
    params: BulkNoParams = Field(default_factory=BulkNoParams)


class BulkRestore(_Bulk):
    action: Literal["restore"]
    params: BulkNoParams = Field(default_factory=BulkNoParams)


class BulkAddCategory(_Bulk):
    action: Literal["add_category"]
    params: BulkCategoryParams


class BulkRemoveCategory(_Bulk):
    action: Literal["remove_category"]
    params: BulkCategoryParams


class BulkAddTag(_Bulk):
    action: Literal["add_tag"]
    params: BulkTagParams


class BulkRemoveTag(_Bulk):
    action: Literal["remove_tag"]
    params: BulkTagParams


class BulkAddToSegment(_Bulk):
    action: Literal["add_to_segment"]
    params: BulkSegmentParams


BulkAction = Annotated[BulkChangeStatus | BulkArchive | BulkRestore | BulkAddCategory | BulkRemoveCategory
                       | BulkAddTag | BulkRemoveTag | BulkAddToSegment, Field(discriminator="action")]


class BulkIn(Root[BulkAction]):
    """One action and the clients it applies to; `params` as the action takes them."""


class BulkError(Model):
    code: str = Field(description="The code the client's own route would answer, e.g. `not_found`, `conflict`.")
    message: str


class BulkResult(Model):
    client_id: str
    ok: bool
    error: BulkError | None


class BulkOut(Model):
    succeeded: int
    failed: int
    results: list[BulkResult]


def _body(ctx: Ctx) -> BulkAction:
    """The body, or 422 naming each field as the caller wrote it (`params.status`, not the union's branch)."""
    if not isinstance(ctx.json(), dict):
        raise InvalidJson("the body must be a JSON object")
    try:
        return BulkIn.model_validate_json(ctx.request.raw_body, strict=True).root
    except ValidationError as exc:
        details = []
        for err, detail in zip(exc.errors(), errors.details_of(exc), strict=False):
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                detail = {"field": "action", "message": f"must be one of {', '.join(bulk_cases.ACTIONS)}"}
            elif err["loc"] and err["loc"][0] in bulk_cases.ACTIONS:
                detail = {**detail, "field": detail["field"].removeprefix(f"{err['loc'][0]}.")}
            details.append(detail)
        fields = ", ".join(sorted({d["field"] for d in details}))
        raise ValidationFailed(f"invalid fields: {fields}", details) from None


def _as_patch(changes: dict[str, Any]) -> None:
    """What a PATCH body could not carry (more than 20 tags, 10 categories) fails this client as PATCH would."""
    try:
        ClientUpdate.model_validate(changes, strict=True)
    except ValidationError as exc:
        details = errors.details_of(exc)
        raise ValidationFailed("; ".join(f"{d['field']}: {d['message']}" for d in details), details) from None


@api(bp, "POST", "/v1/clients/bulk", summary="Apply one action to up to 500 clients", need="manager", body=BulkIn,
     response=BulkOut, idempotent=True)
def bulk_action(ctx: Ctx):
    body = _body(ctx)
    # Each client's writes are its own transaction; they do not also mark the Idempotency-Key (one item that 500
    # transactions at once would contend for). Every action is idempotent in effect, so a bulk whose answer was
    # lost is simply run again; a finished one is answered again from the key.
    with holding(None):
        outcome = bulk_cases.bulk_action(ctx.stores(), body.action, body.client_ids, body.params.model_dump(),
                                         check_changes=_as_patch)
    return outcome.public()
