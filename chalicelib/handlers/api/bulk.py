"""Bulk routes (issue 13): one action on up to 500 clients, answered with a result per id."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from chalice import Blueprint
from pydantic import BaseModel, Field, RootModel, ValidationError

from chalicelib.domain import bulk_cases as cases
from chalicelib.domain.errors import InvalidJson, ValidationFailed
from chalicelib.handlers import errors
from chalicelib.handlers import schemas as s
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.base import limits, retry_budget
from chalicelib.tables.idempotency import holding

bp = Blueprint(__name__)

ClientIds = Annotated[list[s.Id], Field(min_length=1, max_length=cases.MAX_IDS, description=(
    f"1 to {cases.MAX_IDS} client ids; the answer has one result per id, in this order. A repeated id is changed "
    "once and answered at each place it appears."))]


class BulkStatusParams(s.Strict):
    status: Literal["lead", "trial", "active", "inactive"] = Field(
        description="As PATCH takes it: `archived` is reached with the `archive` action.")


class BulkCategoryParams(s.Strict):
    category_id: s.Id


class BulkTagParams(s.Strict):
    tag: s.Tag = Field(description="Compared ignoring case, like the `tag` filter.")


class BulkSegmentParams(s.Strict):
    segment_id: s.Id = Field(description="A static segment (members of a dynamic one come from its criteria).")


class BulkNoParams(s.Strict):
    """`archive` and `restore` take no params: `{}` or left out."""


class _Bulk(s.Strict):
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


BULK_ACTIONS = (BulkChangeStatus, BulkArchive, BulkRestore, BulkAddCategory, BulkRemoveCategory, BulkAddTag,
                BulkRemoveTag, BulkAddToSegment)


class BulkIn(RootModel[Annotated[Union[BULK_ACTIONS], Field(discriminator="action")]]):  # noqa: UP007
    """One action and the clients it applies to; `params` as the action takes them."""


class BulkError(BaseModel):
    code: str = Field(description="The code the client's own route would answer, e.g. `not_found`, `conflict`.")
    message: str


class BulkResult(BaseModel):
    client_id: str
    ok: bool
    error: BulkError | None


class BulkOut(BaseModel):
    succeeded: int
    failed: int
    results: list[BulkResult]


def _body(ctx: Ctx) -> BaseModel:
    """The body, or 422 naming each field as the caller wrote it (`params.status`, not the union's branch)."""
    if not isinstance(ctx.json(), dict):
        raise InvalidJson("the body must be a JSON object")
    try:
        return BulkIn.model_validate_json(ctx.request.raw_body, strict=True).root
    except ValidationError as exc:
        details = []
        for err, detail in zip(exc.errors(), errors.details_of(exc), strict=False):
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                detail = {"field": "action", "message": f"must be one of {', '.join(cases.ACTIONS)}"}
            elif err["loc"] and err["loc"][0] in cases.ACTIONS:
                detail = {**detail, "field": detail["field"].removeprefix(f"{err['loc'][0]}.")}
            details.append(detail)
        fields = ", ".join(sorted({d["field"] for d in details}))
        raise ValidationFailed(f"invalid fields: {fields}", details) from None


def _as_patch(changes: dict[str, Any]) -> None:
    """What a PATCH body could not carry (more than 20 tags, 10 categories) fails this client as PATCH would."""
    try:
        s.ClientUpdate.model_validate(changes, strict=True)
    except ValidationError as exc:
        details = errors.details_of(exc)
        raise ValidationFailed("; ".join(f"{d['field']}: {d['message']}" for d in details), details) from None


def _seconds() -> float:
    """No client starts after the moment its first attempt could no longer finish inside the request's database
    budget (DB_RETRY_BUDGET, shared by every call of the request)."""
    return max(1.0, retry_budget() - limits().attempt_seconds)


@api(bp, "POST", "/v1/clients/bulk", summary="Apply one action to up to 500 clients", need="manager", body=BulkIn,
     response=BulkOut, idempotent=True)
def bulk_action(ctx: Ctx):
    body = _body(ctx)
    # Each client's writes are its own transaction; they do not also mark the Idempotency-Key (one item that 500
    # transactions at once would contend for). Every action is idempotent in effect, so a bulk whose answer was
    # lost is simply run again; a finished one is answered again from the key.
    with holding(None):
        outcome = cases.bulk_action(ctx.stores(), body.action, body.client_ids, body.params.model_dump(),
                                    actor=ctx.actor, check_changes=_as_patch, seconds=_seconds())
    return outcome.public()
