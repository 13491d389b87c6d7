"""The OpenAPI 3.1 document of every registered route, and the offline HTML reference rendered from it."""
from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from chalicelib.domain.values import MAX_ID_LENGTH
from chalicelib.handlers.auth import STAFF_ROLES
from chalicelib.handlers.fields import IF_MATCH
from chalicelib.handlers.routing import ROUTES, RouteDoc

TITLE = "NexusRMS Client Management API"
SCHEMAS = "#/components/schemas/"
ERROR_SCHEMAS = {
    "ErrorDetail": {"type": "object", "required": ["field", "message"], "properties": {
        "field": {"type": "string", "description": "The field, query parameter or header at fault."},
        "message": {"type": "string"}}},
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"], "properties": {
            "code": {"type": "string", "description": "Machine-readable error code, e.g. `validation_error`."},
            "message": {"type": "string", "description": "Human-readable explanation."},
            "details": {"type": "array", "items": {"$ref": SCHEMAS + "ErrorDetail"}},
            "request_id": {"type": "string", "description": "The answer's `X-Request-Id`, to quote to support."}}}}},
}
# status -> (component name, description naming the codes the contract gives it)
ERRORS = {
    400: ("BadRequest", "`invalid_json`, `invalid_cursor` or `bad_request`: the body is not a JSON object, "
                        "the cursor was edited or is foreign, or a query parameter or header is invalid."),
    401: ("Unauthorized", "`unauthorized`: missing, malformed, expired or wrongly signed token or signature."),
    403: ("Forbidden", "`forbidden`: authenticated, but the role lacks the permission."),
    404: ("NotFound", "`not_found`: no such resource in the caller's tenant."),
    409: ("Conflict", "`conflict` or a specific rule code: the request breaks a business rule."),
    412: ("VersionConflict", "`version_conflict`: the `If-Match` version is stale."),
    413: ("PayloadTooLarge", "`payload_too_large`: the body is larger than 1 MiB."),
    415: ("UnsupportedMediaType", "`unsupported_media_type`: the body's `Content-Type` is not one the operation "
                                  "takes (`application/json`)."),
    422: ("ValidationError", "`validation_error`: field validation failed; `details` names each field."),
    429: ("RateLimited", "`rate_limited`: a rate limit was reached (the message names it and its setting); nothing "
                         "was sent or written. The `Retry-After` header gives the seconds until it lifts."),
    503: ("Unavailable", "`unavailable`: the database cannot be reached. The message says whether nothing was "
                         "written or the outcome is unknown; retrying with the same `Idempotency-Key` is safe."),
}
NO_DATABASE = {"/v1/openapi.json", "/v1/docs"}  # routes that answer without touching the table
# Answers to requests the document calls valid, which it cannot rule out: they depend on stored data (an id that
# must name an existing item, the current version) or on a rule between fields. Each operation lists its rules as
# `x-business-rules` ({status, rule}) and in its description; the Schemathesis suite (tests/fuzz) accepts exactly
# these statuses for schema-valid data, so a rule not written here is a failure there.
# Rules of every JSON body that JSON Schema cannot state (it compares values, not how they are written): in the
# document's description and `x-json-rules`; the Schemathesis suite accepts the 422s they give because they are here.
JSON_RULES = [
    "An integer field takes a JSON integer written without a fraction or exponent: `95`, not `95.0` or `9.5e1` "
    "(422 naming the field), as JSON types are taken strictly (`\"3\"` is no integer, `1` no boolean).",
]
RETRY_AFTER = (409, 429, 503)  # error answers that may carry Retry-After

BUSINESS_RULES: dict[tuple[str, str], list[tuple[int, str]]] = {
    ("POST", "/v1/categories"): [
        (422, "`parent_id` must name a category of the tenant, at most 10 levels below a root.")],
    ("PATCH", "/v1/categories/{category_id}"): [
        (422, "`parent_id` must name another category of the tenant that is not below this one.")],
    ("PATCH", "/v1/clients/{client_id}"): [
        (422, "`category_ids` must name categories of the tenant.")],
    ("POST", "/v1/clients"): [
        (422, "`category_ids` must name categories of the tenant.")],
    ("POST", "/v1/clients/bulk"): [
        (422, "`params` carry what the `action` needs (e.g. `segment_id` of a static segment of the tenant).")],
    ("POST", "/v1/clients/import"): [
        (400, "The file is CSV text with a header row naming known columns, and at least one row.")],
    ("POST", "/v1/clients/{client_id}/associations"): [
        (422, "`related_id` must name another client of the tenant.")],
    ("POST", "/v1/clients/{client_id}/communications"): [
        (422, "Each `type` needs its own fields (an email its addresses and subject, an SMS its body, a meeting its "
              "date); `thread_id` and `client_contact_id` must belong to the client.")],
    ("PATCH", "/v1/clients/{client_id}/communications/{comm_id}"): [
        (422, "`thread_id` and `client_contact_id` must belong to the client; the fields must suit the type.")],
    ("POST", "/v1/clients/{client_id}/feedback"): [
        (422, "`project_id`, when given, must name a project of the client.")],
    ("PUT", "/v1/integrations/invoices/{invoice_id}"): [
        (422, "`client_id` must name a client of the tenant.")],
    ("PUT", "/v1/integrations/projects/{project_id}"): [
        (422, "`client_id` must name a client of the tenant and `contact_ids` contacts of that client.")],
    ("POST", "/v1/segments"): [
        (422, "A dynamic segment needs `criteria` (on known fields) and a static one has none, nor a "
              "`refresh_frequency`.")],
    ("POST", "/v1/segments/{segment_id}/members"): [
        (422, "`client_id` must name a client of the tenant that is not archived.")],
    ("PATCH", "/v1/segments/{segment_id}"): [
        (422, "`criteria` and `refresh_frequency` are for dynamic segments only.")],
    ("POST", "/v1/settings/custom-fields"): [
        (422, "A `select` field needs `options`; other types take none.")],
    ("PUT", "/v1/settings/lead-score-thresholds"): [(422, "`warm` must be lower than `hot`.")],
    ("PATCH", "/v1/settings/lead-score-thresholds"): [(422, "`warm` must stay lower than `hot`.")],
}


def operation_id(method: str, path: str) -> str:
    """`GET /v1/clients/{client_id}` -> `get_clients_client_id`."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path.removeprefix("/v1")) if w]
    return "_".join([method.lower(), *words])


def access(need: str) -> str:
    if need == "public":
        return "No authentication."
    if need == "integration":
        return "Requires a bearer token with role `integration` (or `admin`)."
    if need == "portal":
        return ("Requires a `portal` bearer token (scope `portal`, from an accepted invitation); answers are limited "
                "to the caller's own client.")
    if need in STAFF_ROLES:
        allowed = ", ".join(f"`{r}`" for r in STAFF_ROLES[STAFF_ROLES.index(need):])
        return f"Requires a bearer token with role `{need}` or higher ({allowed})."
    return f"Requires a bearer token with role `{need}`."


def _versioned(doc: RouteDoc) -> bool:
    """PATCH of a resource that carries a `version`: it honours `If-Match` (412 when stale)."""
    return doc.method == "PATCH" and doc.response is not None and "version" in doc.response.model_fields


def business_rules(doc: RouteDoc) -> list[dict]:
    """The answers to schema-valid requests of this route that depend on stored data or on rules between fields."""
    rules = [{"status": status, "rule": rule} for status, rule in BUSINESS_RULES.get((doc.method, doc.path), [])]
    if doc.list_response:
        rules.append({"status": 400, "rule": "`cursor` must be a `next_cursor` this API answered for the same list "
                                             "and filters (`invalid_cursor`)."})
    if _versioned(doc):
        rules.append({"status": 412, "rule": "`If-Match` must name the current `version` (`version_conflict`)."})
    return rules


def _error_statuses(doc: RouteDoc) -> list[int]:
    writes = doc.method in ("POST", "PUT", "PATCH", "DELETE")
    wanted = {
        400: doc.body is not None or doc.query is not None or doc.idempotent or _versioned(doc),
        401: doc.need != "public" or doc.body is not None,
        403: doc.need != "public",
        404: "{" in doc.path,
        409: writes and doc.need != "public",
        412: _versioned(doc),
        413: writes,
        415: doc.body is not None,
        422: doc.body is not None,
        503: doc.path not in NO_DATABASE,
    }
    return [status for status, on in wanted.items() if on]


def _decimal_pattern(places: int | None, whole: int | None, positive: bool, signed: bool) -> str:
    """The decimal texts a Decimal field takes: an optional sign, at most `whole` digits before the point (leading
    zeros aside) and `places` after it (trailing zeros aside); `positive`: some digit is not zero. Anchored at both
    ends (pydantic's own pattern leaves its first branch open at the end, so `"12abc"` would pass as valid)."""
    before = rf"\d{{0,{whole}}}" if whole is not None else r"\d*"
    after = rf"\d{{0,{places}}}0*" if places is not None else r"\d*"
    sign = "[+-]?" if signed else r"\+?"
    nonzero = "(?=[^1-9]*[1-9])" if positive else ""
    return rf"^{nonzero}{sign}0*(?=[.\d]*\d){before}(?:\.{after})?$"


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema, with constrained dict keys as `propertyNames` (its `patternProperties` would let
    keys of any other shape through, which the validator refuses), and decimals as exactly the texts and numbers
    the field takes (below)."""

    def str_schema(self, schema):
        """Bodies strip surrounding whitespace before counting, so a required text needs a character that is not
        whitespace (`"\\u000b"` is empty once stripped)."""
        out = super().str_schema(schema)
        if out.get("minLength", 0) >= 1 and "pattern" not in out:  # answers too: they hold what was taken
            out["pattern"] = r"\S"
        return out

    def decimal_schema(self, schema):
        """A decimal is a decimal string or a JSON number. The string's pattern says its digits before and after the
        point; the number's bounds say the same (`multipleOf` for the places, `exclusiveMaximum` for the digits)."""
        if self.mode != "validation":
            return super().decimal_schema(schema)
        places, digits = schema.get("decimal_places"), schema.get("max_digits")
        whole = digits - (places or 0) if digits is not None else None
        low = schema.get("ge", schema.get("gt"))
        high = schema.get("le", schema.get("lt"))
        if high is not None and high == int(high) and str(int(high)).strip("0") == "1":  # 10, 100: fewer digits
            top = len(str(int(high))) - 1
            whole = top if whole is None else min(whole, top)
        number: dict = {"type": "number"}
        for key, bound in (("minimum", "ge"), ("exclusiveMinimum", "gt"), ("maximum", "le"),
                           ("exclusiveMaximum", "lt")):
            if schema.get(bound) is not None:
                number[key] = float(schema[bound])
        if whole is not None and "maximum" not in number and "exclusiveMaximum" not in number:
            number["exclusiveMaximum"] = float(10 ** whole)
        if places is not None:
            number["multipleOf"] = float(f"1e-{places}")
        pattern = _decimal_pattern(places, whole, positive="gt" in schema and low == 0, signed=low is None or low < 0)
        text: dict[str, Any] = {"type": "string", "pattern": pattern}
        if high is not None and whole is not None and "le" in schema:  # `10` itself: the pattern stops at 9.99…
            exact = str(int(high))
            text = {"anyOf": [text, {"type": "string", "pattern": rf"^\+?0*{exact}(?:\.0*)?$"}]}
        return {"anyOf": [number, text]}

    def dict_schema(self, schema):
        out = super().dict_schema(schema)
        patterns = out.get("patternProperties", {})
        if len(patterns) == 1 and "additionalProperties" not in out:
            (pattern, values), = patterns.items()
            del out["patternProperties"]
            out["propertyNames"] = {"pattern": pattern}
            if values:
                out["additionalProperties"] = values
        return out


def _schemas(routes: list[RouteDoc]) -> tuple[dict, dict]:
    """One pydantic pass over every model: (model, mode) -> `$ref`, and the component schemas."""
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for doc in routes:
        wanted: list[tuple[type[BaseModel] | None, JsonSchemaMode]] = [
            (doc.body, "validation"), (doc.query, "validation"), (doc.response, "serialization"),
            *((m, "serialization") for m in doc.also_bodies.values())]
        for model, mode in wanted:
            if model is not None and (model, mode) not in pairs:
                pairs.append((model, mode))
    if not pairs:
        return {}, {}
    refs, top = models_json_schema(pairs, ref_template=SCHEMAS + "{model}", schema_generator=_Generator)
    return refs, top.get("$defs", {})


def _query_schema(prop: dict) -> dict:
    """A query parameter is absent rather than null: drop the `null` branch, the title and a null default."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "description", "anyOf", "default")}
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    if prop.get("default") is not None:
        schema["default"] = prop["default"]
    return schema


def _parameters(doc: RouteDoc, refs: dict, components: dict) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True,  # a longer id is a 404: none can exist
               "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}}
              for name in re.findall(r"{(\w+)\+?}", doc.path)]
    if doc.query is not None:
        schema = components[refs[(doc.query, "validation")]["$ref"].removeprefix(SCHEMAS)]
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required}
            if "description" in prop:
                param["description"] = prop["description"]
            schema = _query_schema(prop)
            if schema.get("type") == "array":  # a list parameter is one comma list: `status=lead,active`
                param.update(style="form", explode=False)
                schema.setdefault("minItems", 1)  # `status=` is no list (400): leave the parameter out instead
            params.append({**param, "schema": schema})
    if doc.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "maxLength": 255},
                       "description": "The same key from the same tenant within 24 h returns the first response "
                                      "again and creates nothing new."})
    if _versioned(doc):
        params.append({"name": "If-Match", "in": "header", "required": False,
                       "schema": {"type": "string", "pattern": IF_MATCH.pattern},
                       "description": "The `version` last read, plain (`3`) or quoted (`\"3\"`); a stale one gives "
                                      "412 `version_conflict`. Without it the change is applied to the latest "
                                      "version."})
    return params


def _success(doc: RouteDoc, refs: dict, status: int, description: str | None = None) -> dict:
    out: dict = {"description": description or ("No content." if status == 204 else "Success.")}
    if status == 204:
        return out
    if status in doc.also_bodies:  # an answer of its own shape (an export's link instead of its CSV)
        out["content"] = {"application/json": {"schema": refs[(doc.also_bodies[status], "serialization")]}}
    else:
        if doc.response is not None:
            schema = refs[(doc.response, "serialization")]
        else:
            schema = {"type": "object"} if "json" in doc.content_type else {"type": "string"}
        out["content"] = {doc.content_type: {"schema": schema}}
    if 300 <= status < 400:
        out["headers"] = {"Location": {"description": "Where the answer is to be fetched.", "required": True,
                                       "schema": {"type": "string", "format": "uri-reference"}}}
    if doc.idempotent:
        out.setdefault("headers", {})["Idempotent-Replayed"] = {
            "description": "`true` when this answers a repeated key.", "schema": {"type": "string", "enum": ["true"]}}
    return out


def _operation(doc: RouteDoc, refs: dict, components: dict) -> dict:
    rules = business_rules(doc)
    description = access(doc.need)
    if rules:
        description += " Valid requests can still be refused by these rules: " + " ".join(
            f"{r['status']}: {r['rule']}" for r in rules)
    op: dict = {"operationId": operation_id(doc.method, doc.path), "summary": doc.summary, "tags": [doc.tag],
                "description": description, "x-required-role": doc.need}
    if rules:
        op["x-business-rules"] = rules
    params = _parameters(doc, refs, components)
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(doc.body, "validation")]}}}
    elif doc.accepts:  # a file sent as it is (an import's CSV)
        op["requestBody"] = {"required": True, "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in doc.accepts}}
    op["responses"] = {str(doc.status): _success(doc, refs, doc.status)}
    for status, meaning in doc.also.items():  # further answers the route declares, with the same body
        if status < 400:
            op["responses"][str(status)] = _success(doc, refs, status, meaning)
    for status in sorted({*_error_statuses(doc), *(s for s in doc.also if s >= 400), *(r["status"] for r in rules)}):
        op["responses"][str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    if doc.need != "public":
        op["security"] = [{"bearerAuth": []}]
    return op


@lru_cache(maxsize=1)
def _document() -> str:
    refs, components = _schemas(ROUTES)
    paths: dict = {}
    for doc in ROUTES:
        paths.setdefault(doc.path, {})[doc.method.lower()] = _operation(doc, refs, components)
    tags = list(dict.fromkeys(doc.tag for doc in ROUTES))
    responses = {name: {"description": text, "content": {"application/json": {"schema": {"$ref": SCHEMAS + "Error"}}}}
                 for name, text in ERRORS.values()}
    for status in RETRY_AFTER:  # when to try again, in seconds (a rate limit, a request still in progress, a 503)
        responses[ERRORS[status][0]]["headers"] = {"Retry-After": {
            "description": "Seconds to wait before trying again.", "required": status == 429,
            "schema": {"type": "integer", "minimum": 1}}}
    return json.dumps({
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": "1.0.0",
                 "description": "JSON in and out, `snake_case` fields, errors always in the `Error` envelope. "
                                + " ".join(JSON_RULES)},
        "x-json-rules": JSON_RULES,
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": {**components, **ERROR_SCHEMAS},
            "responses": responses,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    })


def build_openapi() -> dict:
    """The document (built once, on first use; a fresh copy each call so callers cannot alter the cache)."""
    return json.loads(_document())


# --- the HTML reference -------------------------------------------------------------------------------------

def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _md(text: object) -> str:
    """Escaped text with its `code` spans (the only markdown the document uses) as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _type(schema: dict) -> str:
    """A short, linked HTML description of a JSON schema's type."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{_e(json.dumps(v))}</code>" for v in schema["enum"])
    if "const" in schema:
        return f"<code>{_e(json.dumps(schema['const']))}</code>"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'])}"
    if kind == "object" and schema.get("properties"):
        return "{" + ", ".join(f"{_e(k)}: {_type(v)}" for k, v in schema["properties"].items()) + "}"
    bits = [str(kind)] + [f"{k} {schema[k]}" for k in ("format", "pattern", "minLength", "maxLength", "minimum",
                                                        "maximum", "exclusiveMinimum") if k in schema]
    return _e(", ".join(bits))


def _table(head: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _render_operation(path: str, method: str, op: dict) -> str:
    parts = [f'<section class="op" id="{_e(op["operationId"])}"><h3><span class="m m-{method}">'
             f'{method.upper()}</span> <code>{_e(path)}</code></h3><p>{_e(op["summary"])}</p>'
             f'<p class="auth">{_md(op["description"])}</p>']
    rows: list[tuple[Any, ...]]
    if op.get("parameters"):
        rows = [(f"<code>{_e(p['name'])}</code>", _e(p["in"]), "yes" if p.get("required") else "",
                 _type(p.get("schema", {})), _md(p.get("description", ""))) for p in op["parameters"]]
        parts.append("<h4>Parameters</h4>" + _table(("name", "in", "required", "type", "description"), rows))
    if "requestBody" in op:
        kinds = ", ".join(f"<code>{_e(media)}</code>: {_type(c['schema'])}"
                          for media, c in op["requestBody"]["content"].items())
        parts.append(f"<h4>Request body</h4><p>{kinds}</p>")
    rows = []
    for status, response in op["responses"].items():
        if "$ref" in response:
            rows.append((status, '<a href="#schema-Error">Error</a>', _md(ERRORS[int(status)][1])))
            continue
        content = response.get("content", {})
        kinds = ", ".join(f"<code>{_e(ct)}</code> {_type(c.get('schema', {}))}" for ct, c in content.items())
        rows.append((status, kinds or "(empty)", _md(response["description"])))
    parts.append("<h4>Responses</h4>" + _table(("status", "body", "meaning"), rows))
    return "".join(parts) + "</section>"


def _render_schema(name: str, schema: dict) -> str:
    required = set(schema.get("required", []))
    rows = [(f"<code>{_e(field)}</code>", _type(prop), "yes" if field in required else "",
             _md(prop.get("description", "")))
            for field, prop in schema.get("properties", {}).items()]
    inner = _table(("field", "type", "required", "description"), rows) if rows else f"<p>{_type(schema)}</p>"
    return f'<section class="schema" id="schema-{_e(name)}"><h3>{_e(name)}</h3>{inner}</section>'


@lru_cache(maxsize=1)
def render_docs() -> str:
    """The API reference page: operations grouped by tag, then every schema; no external assets."""
    doc = build_openapi()
    by_tag: dict[str, list[str]] = {t["name"]: [] for t in doc["tags"]}
    toc: dict[str, list[str]] = {t["name"]: [] for t in doc["tags"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            tag = op["tags"][0]
            by_tag[tag].append(_render_operation(path, method, op))
            toc[tag].append(f'<li><a href="#{_e(op["operationId"])}"><span class="m m-{method}">'
                            f'{method.upper()}</span> {_e(path)}</a></li>')
    nav = "".join(f"<h2>{_e(tag)}</h2><ul>{''.join(items)}</ul>" for tag, items in toc.items())
    nav += "<h2>schemas</h2><ul>" + "".join(
        f'<li><a href="#schema-{_e(n)}">{_e(n)}</a></li>' for n in doc["components"]["schemas"]) + "</ul>"
    main = "".join(f'<h2 id="tag-{_e(tag)}">{_e(tag)}</h2>{"".join(ops)}' for tag, ops in by_tag.items())
    main += '<h2 id="schemas">Schemas</h2>' + "".join(
        _render_schema(n, s) for n, s in doc["components"]["schemas"].items())
    template = Path(__file__).with_name("docs_page.html").read_text(encoding="utf-8")
    return (template.replace("{{title}}", _e(doc["info"]["title"]))
            .replace("{{version}}", _e(doc["info"]["version"]))
            .replace("{{nav}}", nav).replace("{{main}}", main))
