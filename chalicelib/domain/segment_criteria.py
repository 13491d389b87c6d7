"""Dynamic-segment criteria: checking the conditions a segment is defined by and matching clients against them."""
from __future__ import annotations

import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.clients import Client, Facet
from chalicelib.domain.codes import COUNTRIES
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.settings import CustomFieldDef

OPERATORS: tuple[str, ...] = ("equals", "not_equals", "contains", "greater_than", "less_than", "in", "not_in",
                              "is_null", "is_not_null")
MAX_CONDITIONS = 20
MAX_IN_VALUES = 100
MAX_TEXT = 1000
CUSTOM = "custom_fields."
NULL_OPERATORS = frozenset({"is_null", "is_not_null"})
NEGATED = {"not_equals": "equals", "not_in": "in"}

SCALAR = frozenset({"text", "enum", "decimal", "integer", "float", "boolean", "timestamp", "date"})
ORDERED = frozenset({"decimal", "integer", "float", "timestamp", "date"})
APPLIES_TO = {"equals": SCALAR, "not_equals": SCALAR, "contains": frozenset({"text", "list"}),
              "greater_than": ORDERED, "less_than": ORDERED, "in": SCALAR | {"list"}, "not_in": SCALAR | {"list"}}

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class FieldType:
    kind: str  # text enum decimal integer float boolean timestamp date list object
    options: tuple[str, ...] = ()  # the allowed values, when the field has a fixed set
    country: bool = False  # ISO codes: checked and compared upper-cased


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    field: str
    operator: str
    value: Any = None


class Criteria(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    match: Literal["all", "any"] = "all"
    conditions: list[Condition]


PYTHON_KINDS = {str: "text", Decimal: "decimal", int: "integer", float: "float", bool: "boolean", datetime: "timestamp",
                date: "date"}
CUSTOM_KINDS = {"text": "text", "select": "text", "number": "decimal", "date": "date", "boolean": "boolean"}


def _type_of_annotation(annotation: Any) -> FieldType:
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return FieldType("enum", get_args(annotation))
    if get_origin(annotation) is list:
        return FieldType("list")
    if get_origin(annotation) is dict or isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return FieldType("object")
    return FieldType(PYTHON_KINDS[annotation])


# Hidden (excluded) fields are internal; addresses are filtered through `country`, custom fields by key.
FIELDS: dict[str, FieldType] = {
    name: _type_of_annotation(info.annotation) for name, info in Client.model_fields.items()
    if not info.exclude and name not in ("addresses", "custom_fields")
} | {"at_risk": FieldType("boolean"), "country": FieldType("text", tuple(sorted(COUNTRIES)), country=True)}


def describe_fields() -> dict[str, str]:
    """Each client field a condition may name and its type; `custom_fields.<key>` follow their definitions."""
    return {name: t.kind for name, t in FIELDS.items()}


def _field_type(field: Any, customs: dict[str, CustomFieldDef]) -> FieldType | None:
    if not isinstance(field, str):
        return None
    if field.startswith(CUSTOM):
        d = customs.get(field[len(CUSTOM):])
        return FieldType(CUSTOM_KINDS[d.type], tuple(d.options)) if d else None
    return FIELDS.get(field)


def _scalar(t: FieldType, v: Any) -> Any:
    """`v` as a value of the field's type; ValueError naming the problem when it does not fit."""
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if t.kind in ("text", "enum", "list"):
        if not isinstance(v, str) or not 0 < len(v) <= MAX_TEXT:
            raise ValueError(f"must be a non-empty string of at most {MAX_TEXT} characters")
        v = v.upper() if t.country else v
        if t.options and v not in t.options:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code" if t.country
                             else f"must be one of {', '.join(t.options)}")
        return v
    if t.kind == "decimal":
        try:
            d = Decimal(str(v)) if number or isinstance(v, str) else None
        except InvalidOperation:
            d = None
        if d is None or not d.is_finite():
            raise ValueError("must be a number or a decimal string")
        return d
    if t.kind == "integer":
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError("must be an integer")
        return v
    if t.kind == "float":
        if not number or not math.isfinite(v):
            raise ValueError("must be a number")
        return float(v)
    if t.kind == "boolean":
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v
    try:
        if isinstance(v, str) and DATE.fullmatch(v):
            day = date.fromisoformat(v)
            return day if t.kind == "date" else datetime.combine(day, time(), UTC)
        if t.kind == "timestamp" and isinstance(v, str) and TIMESTAMP.fullmatch(v):
            return datetime.fromisoformat(v).astimezone(UTC)
    except ValueError:
        pass
    raise ValueError("must be a date YYYY-MM-DD" if t.kind == "date"
                     else "must be a date YYYY-MM-DD or an ISO 8601 timestamp with Z or an offset")


def _value(t: FieldType, operator: str, v: Any) -> Any:
    if operator in NULL_OPERATORS:
        if v is not None:
            raise ValueError(f"must be null or absent for {operator}")
        return None
    if operator in ("in", "not_in"):
        if not isinstance(v, list) or not 0 < len(v) <= MAX_IN_VALUES:
            raise ValueError(f"must be a list of 1 to {MAX_IN_VALUES} values")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(_scalar(t, item))
            except ValueError as e:
                raise ValueError(f"item {i} {e}") from None
        return out
    if v is None:
        raise ValueError(f"is required for {operator} (is_null matches empty values)")
    return _scalar(t, v)


def _condition(raw: Any, path: str, customs: dict[str, CustomFieldDef],
               bad: Callable[[str, str], None]) -> Condition | None:
    if not isinstance(raw, dict):
        bad(path, "must be an object with field, operator and value")
        return None
    if extra := sorted(set(raw) - {"field", "operator", "value"}):
        bad(path, f"has unknown keys: {', '.join(map(str, extra))}")
    field, operator = raw.get("field"), raw.get("operator")
    t = _field_type(field, customs)
    if t is None:
        bad(f"{path}.field", "is not a defined custom field" if isinstance(field, str) and field.startswith(CUSTOM)
            else "is not a client field segments can filter on")
    if operator not in OPERATORS:
        bad(f"{path}.operator", f"must be one of {', '.join(OPERATORS)}")
    elif t and operator not in NULL_OPERATORS and t.kind not in APPLIES_TO[operator]:
        bad(f"{path}.operator", f"{operator} does not apply to {field}, a {t.kind} field")
    elif t:
        try:
            return Condition(field=field, operator=operator, value=_value(t, operator, raw.get("value")))
        except ValueError as e:
            bad(f"{path}.value", str(e))
    return None


def validate_criteria(raw: Any, custom_fields: list[CustomFieldDef], *, prefix: str = "criteria") -> Criteria:
    """Check raw criteria against the client fields and the tenant's custom fields; every problem in one 422."""
    problems: list[dict] = []

    def bad(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    if not isinstance(raw, dict):
        raise ValidationFailed.field(prefix, "must be an object with match and conditions")
    if extra := sorted(set(raw) - {"match", "conditions"}):
        bad(prefix, f"has unknown keys: {', '.join(map(str, extra))}")
    match = raw.get("match", "all")
    if match not in ("all", "any"):
        bad(f"{prefix}.match", "must be all or any")
    conditions = raw.get("conditions")
    if not isinstance(conditions, list) or not 0 < len(conditions) <= MAX_CONDITIONS:
        bad(f"{prefix}.conditions", f"must be a list of 1 to {MAX_CONDITIONS} conditions")
        conditions = []
    customs = {d.key: d for d in custom_fields}
    parsed = [_condition(c, f"{prefix}.conditions.{i}", customs, bad) for i, c in enumerate(conditions)]
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", problems)
    return Criteria(match=match, conditions=parsed)


def _like(raw: Any, want: Any) -> Any:
    """A stored custom-field value in the type of the condition's value (numbers and dates are stored as given)."""
    sample = want[0] if isinstance(want, list) and want else want
    if raw is None:
        return None
    try:
        if isinstance(sample, Decimal):
            return Decimal(str(raw)) if not isinstance(raw, bool) else None
        if isinstance(sample, date) and not isinstance(sample, datetime):
            return date.fromisoformat(raw)
    except (TypeError, ValueError, ArithmeticError):
        return None  # a value stored before its definition changed type matches as empty
    return raw


def _values(client: Client, field: str, want: Any) -> list:
    """The client's values for a field: none when empty, several for lists and addresses."""
    if field == "country":
        raw: Any = [a.country for a in client.addresses]
    elif field.startswith(CUSTOM):
        raw = _like(client.custom_fields.get(field[len(CUSTOM):]), want)
    else:
        raw = getattr(client, field)
    items = raw if isinstance(raw, list) else [raw]
    return [v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
            for v in items if v is not None and v != "" and v != {}]


def _fold(v: Any) -> Any:
    return v.casefold() if isinstance(v, str) else v


def _test(operator: str, have: Any, want: Any, is_list: bool) -> bool:
    try:
        if operator == "in":
            return any(_fold(have) == _fold(w) for w in want)
        if operator == "equals" or (operator == "contains" and is_list):
            return _fold(have) == _fold(want)
        if operator == "contains":
            return _fold(want) in _fold(have)
        return have > want if operator == "greater_than" else have < want
    except TypeError:
        return False  # a custom value of another type than its definition never matches


def _holds(c: Condition, client: Client) -> bool:
    values = _values(client, c.field, c.value)
    if c.operator in NULL_OPERATORS:
        return bool(values) == (c.operator == "is_not_null")
    operator = NEGATED.get(c.operator, c.operator)
    is_list = FIELDS.get(c.field, FieldType("text")).kind == "list"
    # Several values (tags, addresses' countries): a positive test holds for any; its negation for none.
    hit = any(_test(operator, v, c.value, is_list) for v in values)
    return not hit if c.operator in NEGATED else hit


def matches(criteria: Criteria, client: Client) -> bool:
    """Whether a client meets criteria as returned by `validate_criteria` (values already in their field's type)."""
    results = (_holds(c, client) for c in criteria.conditions)
    return all(results) if criteria.match == "all" else any(results)


# --- the facet partitions that hold every client criteria can match -------------------------------------------

FACET_OF_FIELD = {"status": "status", "type": "type", "pricing_tier": "tier", "risk_level": "risk"}  # enum fields


def _condition_facets(c: Condition, high_value_threshold: Decimal | None) -> list[Facet] | None:
    """Facet partitions holding every client for which `c` holds (see chalicelib.domain.clients.facets), or None
    when no facet selects it (negations, null tests, ranges, free text...)."""
    values = list(dict.fromkeys(c.value)) if c.operator == "in" else [c.value]
    if c.field == "lifetime_revenue" and high_value_threshold is not None:
        # `highvalue=1` holds every client at or over the threshold: enough when every value the condition
        # accepts is at or over it too.
        if c.operator in ("equals", "in", "greater_than") and all(v >= high_value_threshold for v in values):
            return [("highvalue", "1")]
        return None
    if c.field in FACET_OF_FIELD and c.operator in ("equals", "in"):
        # Archived clients never belong: `status=archived` holds no candidate (an empty group is a valid one).
        return [(FACET_OF_FIELD[c.field], v) for v in values if (c.field, v) != ("status", "archived")]
    if c.field == "tags" and c.operator in ("contains", "in"):
        return list(dict.fromkeys(("tag", v.casefold()) for v in values))
    if c.field == "category_ids" and c.operator in ("contains", "in"):
        # Compared ignoring case; category ids are ULIDs (upper case): the value as given, and upper-cased.
        return list(dict.fromkeys(f for v in values for f in (("category", v), ("category", v.casefold().upper()))))
    if c.field == "at_risk" and c.operator in ("equals", "in") and values == [True]:
        return [("atrisk", "1")]
    return None


def selecting_facets(criteria: Criteria, high_value_threshold: Decimal | None = None) -> list[list[Facet]]:
    """Groups of facet partitions, each holding every client the criteria can match: for `all`, one group per
    condition a facet selects (any one will do: a refresh reads the smallest); for `any`, the union of every
    condition's, only when each has one. A group may be empty (nothing can match). No group at all when no facet
    selects them: a refresh then walks every live client. Groups only name candidates: each one is checked
    against the whole criteria."""
    groups = [_condition_facets(c, high_value_threshold) for c in criteria.conditions]
    if criteria.match == "all":
        return [g for g in groups if g is not None]
    if not groups or any(g is None for g in groups):
        return []
    return [list(dict.fromkeys(f for g in groups if g is not None for f in g))]


def reads_lifetime_revenue(criteria: Criteria) -> bool:
    """Whether a condition is on `lifetime_revenue` (selecting_facets then needs the high-value threshold)."""
    return any(c.field == "lifetime_revenue" for c in criteria.conditions)
