"""The field types and model builders every request and response model of the HTTP edge shares."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    RootModel,
    StringConstraints,
    WithJsonSchema,
    create_model,
)

from chalicelib.domain.codes import COUNTRIES, CURRENCIES, any_case_pattern
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.settings import CUSTOM_FIELD_KEY
from chalicelib.domain.values import MAX_ID_LENGTH, Model

T = TypeVar("T")


class Strict(Model):
    """A request body: unknown fields are refused and JSON types are taken as they are (`strict`: a boolean is no
    number, a number no boolean or string; Ctx.body validates every body so, domain models too). Built on first use,
    as every model of the edge (answers too: out_model, page_of, or a class on `Model`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class Root(RootModel[T], Generic[T]):
    """A body that is one value rather than an object of fields (a discriminated union: `Root[Action]`), built on
    first use like every model here (a bare `RootModel[...]` would be built at import)."""

    model_config = ConfigDict(defer_build=True)


class Query(Model):
    """Query parameters: text, so numbers are parsed from it; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def Text(max_length: int, min_length: int = 0) -> StringConstraints:
    """Trimmed text of `min_length` to `max_length` characters, as a type: `Annotated[str, Text(50)]`."""
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


def _upper_in(allowed: frozenset[str], what: str):
    def check(v: str) -> str:
        v = v.upper()
        if v not in allowed:
            raise ValueError(f"is not an {what} code")
        return v
    return check


def _any_case(codes: frozenset[str]) -> WithJsonSchema:
    """The JSON Schema of a code field: exactly the known codes, in any case (the validator upper-cases them)."""
    return WithJsonSchema({"type": "string", "pattern": any_case_pattern(codes)})


Country = Annotated[str, AfterValidator(_upper_in(COUNTRIES, "ISO 3166-1 alpha-2")), _any_case(COUNTRIES)]
Currency = Annotated[str, AfterValidator(_upper_in(CURRENCIES, "ISO 4217")), _any_case(CURRENCIES)]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
Multiplier = Annotated[Decimal, Field(gt=0, le=10, decimal_places=4)]
Tag = Annotated[str, Text(50, 1)]
CustomFieldKey = Annotated[str, StringConstraints(pattern=CUSTOM_FIELD_KEY.pattern)]  # only such keys can be defined
Id = Annotated[str, Text(MAX_ID_LENGTH, 1)]  # every id a body or query names (contract §16: longer is a 422 / 400)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE)


def _iso(pattern: re.Pattern, kind: type[date], form: str):
    """Only the ISO text form (or a `kind` value): pydantic alone also takes 0 or "1700000000" as unix times. Parsed
    here because strict validation after a before-validator takes no text."""
    def check(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str) and pattern.fullmatch(value):
            try:
                return kind.fromisoformat(value.upper())
            except ValueError:
                pass
        raise ValueError(f"must be {form}")
    return check


# Every date and timestamp of a body or query uses these, never bare `date` / `datetime`.
Date = Annotated[date, BeforeValidator(_iso(_ISO_DATE, date, "a date YYYY-MM-DD"))]
Timestamp = Annotated[AwareDatetime, BeforeValidator(
    _iso(_ISO_TIMESTAMP, datetime, "an ISO 8601 timestamp with a time zone, e.g. 2024-05-01T09:30:00Z"))]


def since_epoch(value: datetime) -> datetime:
    if value < datetime(1970, 1, 1, tzinfo=UTC):
        raise ValueError("must be 1970-01-01 or later")
    return value


def dedupe(values: list[str] | None) -> list[str] | None:
    """Drop repeats, ignoring case as the tag filter does; the first spelling wins."""
    if values is None:
        return None
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return list(seen.values())


def out_model(name: str, record: type[BaseModel], **extra: Any) -> type[BaseModel]:
    """The answer model of a domain record: its public fields (those not excluded), plus `extra` ones."""
    fields: dict[str, Any] = {n: (f.annotation, ...) for n, f in record.model_fields.items() if not f.exclude}
    return create_model(name, __base__=Model, **fields, **extra)


def _optional(f: Any) -> Any:
    """The field's type, nullable, keeping its constraints."""
    return Annotated[f.annotation | None, *f.metadata] if f.metadata else f.annotation | None


def _no_default(schema: dict) -> None:
    schema.pop("default", None)  # left out means "unchanged"; there is no null default to show


def nullable(annotation: Any) -> bool:
    return type(None) in get_args(annotation)


def patch_of(name: str, source: type[BaseModel], *, not_null: tuple[str, ...] | None = None,
             skip: tuple[str, ...] = (), keep_validators: bool = False) -> type[BaseModel]:
    """A PATCH body over `source`'s fields: every one optional, only the named ones written. Null (clearing a
    field) is taken except for `not_null` (by default the fields `source` refuses null for): those refuse it
    here, so the OpenAPI document marks nullable exactly what is accepted. `keep_validators`: `source`'s field
    validators run on the same fields here too."""
    if not_null is None:
        not_null = tuple(n for n, f in source.model_fields.items() if not nullable(f.annotation))
    fields: dict[str, Any] = {}
    for n, f in source.model_fields.items():
        if n in skip:
            continue
        if n in not_null:
            kinds = [a for a in get_args(f.annotation) if a is not type(None)] if nullable(f.annotation) else []
            kind = Union[tuple(kinds)] if kinds else f.annotation  # noqa: UP007 (built at run time)
            kind = Annotated[kind, *f.metadata] if f.metadata else kind
            fields[n] = (kind, Field(None, description=f.description, json_schema_extra=_no_default))
        else:
            fields[n] = (_optional(f), Field(None, description=f.description))
    model = create_model(name, __base__=Strict, **fields)
    if keep_validators:
        model.__pydantic_decorators__ = source.__pydantic_decorators__  # read when the model is first built
        if model.__pydantic_complete__:  # built already (defer_build off): build again with them
            model.model_rebuild(force=True)
    return model


IF_MATCH = re.compile(r'^(?:W/)?("?)([0-9]{1,15})\1$')  # the version number, plain or quoted (an ETag, weak too)


def if_match_version(header: str | None) -> int | None:
    """The version an `If-Match` header names (None without one); anything else is 400 `bad_request`."""
    if header is None:
        return None
    found = IF_MATCH.fullmatch(header.strip())
    if found is None:
        raise BadRequest("If-Match must be the version number, plain or quoted",
                         [{"field": "If-Match", "message": "must be an integer version, e.g. 3 or \"3\""}])
    return int(found.group(2))


def comma_list(allowed: tuple[str, ...]):
    def parse(v: str | None) -> list[str] | None:
        if v is None or isinstance(v, list):
            return v
        items = [p.strip() for p in v.split(",") if p.strip()]
        bad = [p for p in items if p not in allowed]
        if bad or not items:
            raise ValueError(f"must be a comma list of {', '.join(allowed)}")
        return items
    return parse


class ListQuery(Query):
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    cursor: str | None = None


def page_of(item: type[BaseModel]) -> type[BaseModel]:
    return create_model(f"{item.__name__}Page", __base__=Model,
                        items=(list[item], ...),  # type: ignore[valid-type]  # built at run time
                        next_cursor=(str | None, None))


class Build(Model):
    version: str = Field(description="the commit the deployed package was built from (`local` locally)")
    stage: str


class StreamHealth(Model):
    last_batch_at: datetime | None = Field(description="when the stream function last handled a batch")
    lag_seconds: float | None = Field(description="how long that batch's oldest record had waited in the stream")
    seconds_since_last_batch: float | None
    records: int | None


class ScheduleRun(Model):
    job_id: str
    started_at: datetime
    status: str
    finished_at: datetime | None
    tenants: int = Field(description="tenants whose job the run started")
    error: str | None


class Health(Model):
    status: Literal["ok"]
    build: Build
    stream: StreamHealth | None = Field(None, description="with `?deep=true` (admins)")
    schedules: dict[str, ScheduleRun | None] | None = Field(
        None, description="with `?deep=true` (admins): the newest run of each schedule")


class HealthQuery(Query):
    deep: bool = Field(False, description="also the stream lag and the last schedule runs (an admin token)")


HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
Icon = Annotated[str, StringConstraints(pattern=r"^mdi-[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]


def read_only_of(answer: type[BaseModel], body: type[BaseModel]) -> frozenset[str]:
    """The fields an answer shows but a body may not write: named in a 422 as read-only rather than unknown."""
    return frozenset(answer.model_fields) - frozenset(body.model_fields)
