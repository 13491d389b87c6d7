"""The route decorator: auth, body and query parsing, idempotency and error mapping around each view."""
from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from chalicelib import telemetry
from chalicelib.domain.errors import BadRequest, DomainError, NotFound
from chalicelib.domain.values import MAX_ID_LENGTH
from chalicelib.handlers import errors
from chalicelib.handlers.auth import Principal, authorize, verify_token
from chalicelib.handlers.errors import InvalidJson, PayloadTooLarge, UnsupportedMediaType
from chalicelib.handlers.fields import ListQuery, read_only_of

if TYPE_CHECKING:
    from chalicelib.tables.stores import Stores

MAX_BODY = 1024 * 1024
MAX_JSON_DEPTH = 64  # contract §16; also far below the recursion limit of json and pydantic
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # JSON can spell a lone surrogate, which UTF-8 cannot carry


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _too_deep(value: Any) -> bool:
    """Whether containers nest deeper than MAX_JSON_DEPTH, level by level: a loop, not recursion, so no body can
    exhaust the stack."""
    level, depth = ([value] if isinstance(value, (dict, list)) else []), 1
    while level:
        if depth > MAX_JSON_DEPTH:
            return True
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
        depth += 1
    return False


def _lone_surrogate(text: str, value: Any) -> bool:
    if not _ESCAPED_SURROGATE.search(text):
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a pair became one character; a lone one fails
        return False
    except UnicodeEncodeError:
        return True


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or 400 `invalid_json`: strictly UTF-8 (no BOM, no UTF-16, which json.loads would
    otherwise guess from bytes), no NaN or Infinity, nested at most MAX_JSON_DEPTH deep."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_not_json)
    except UnicodeDecodeError:
        raise InvalidJson("the body is not UTF-8") from None
    except RecursionError:
        raise InvalidJson(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise InvalidJson("the body is not valid JSON") from None
    if _too_deep(value):
        raise InvalidJson(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    if _lone_surrogate(text, value):
        raise InvalidJson("the body holds a lone surrogate (\\ud800-\\udfff), which is not UTF-8 text")
    return value


@dataclass
class RouteDoc:
    """What the OpenAPI document says of one route."""

    method: str
    path: str
    summary: str
    need: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    list_response: bool = False
    idempotent: bool = False
    content_type: str = "application/json"
    also: dict[int, str] = field(default_factory=dict)  # further statuses the route answers, with their meaning
    also_bodies: dict[int, type[BaseModel]] = field(default_factory=dict)  # those of `also` answered in JSON
    accepts: list[str] = field(default_factory=list)  # media types of a body that is not JSON (an import's CSV)


ROUTES: list[RouteDoc] = []


@dataclass
class Ctx:
    """What a view gets: the request, the verified principal and parsing helpers."""

    request: Any
    principal: Principal | None
    doc: RouteDoc
    _stores: Stores | None = field(default=None, repr=False)  # built at first use, one per request

    @property
    def tenant_id(self) -> str:
        assert self.principal is not None
        return self.principal.tenant_id

    @property
    def actor(self) -> str | None:
        return self.principal.sub if self.principal else None

    def stores(self) -> Stores:
        """The tenant's repositories, stamping this principal on the changes made through them."""
        if self._stores is None:
            from chalicelib.tables.stores import Stores  # the tables are configured at first use, not at import

            self._stores = Stores(self.tenant_id, self.actor)
        return self._stores

    def header(self, name: str) -> str | None:
        return (self.request.headers or {}).get(name.lower())

    def json(self) -> Any:
        return parse_json(self.request.raw_body or b"")

    def body(self, model: type[BaseModel] | None = None) -> Any:
        """The JSON object body validated by `model` (422 naming each bad field). JSON types are taken strictly:
        a boolean is no number, a number no boolean or string (fields.py adds the ISO forms of dates)."""
        if not isinstance(self.json(), dict):
            raise InvalidJson("the body must be a JSON object")
        return self._model(model, self.doc.body).model_validate_json(self.request.raw_body, strict=True)

    def _model(self, given: type[BaseModel] | None, declared: type[BaseModel] | None) -> type[BaseModel]:
        model = given or declared
        if model is None:
            raise TypeError(f"{self.doc.method} {self.doc.path} declares no model to parse with")
        return model

    def changes(self) -> dict[str, Any]:
        """A PATCH body's named fields (null included: it clears the field); the others stay as they are."""
        body = self.body()
        return {name: getattr(body, name) for name in body.model_fields_set}

    def query(self, model: type[BaseModel] | None = None) -> Any:
        """Query parameters validated by `model`; bad ones are 400 `bad_request` naming the parameter."""
        params = dict(self.request.query_params or {})
        try:
            return self._model(model, self.doc.query).model_validate(params)
        except ValidationError as exc:
            details = errors.details_of(exc)
            raise BadRequest(f"invalid query parameters: {', '.join(d['field'] for d in details)}", details) from None


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status,
                    headers={"Content-Type": errors.JSON, **(headers or {})})


def api(bp: Blueprint, method: str, path: str, *, summary: str, need: str = "viewer", tag: str = "clients",
        body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None, status: int = 200, list_response: bool = False,
        idempotent: bool = False, content_types: list[str] | None = None,
        also: dict[int, str] | None = None,
        content_type: str = "application/json", also_bodies: dict[int, type[BaseModel]] | None = None,
        max_body: int = MAX_BODY) -> Callable:
    """Register a view on `bp`; `need` is a role, `integration`, `portal` or `public`; `also` documents the
    statuses it answers besides `status` and the errors every route may give. `content_type` is the success
    answer's media type; `also_bodies` names the JSON model of an `also` status whose body differs from it.
    `content_types` (media types of the body other than JSON) are checked after authentication: another is 415.
    `max_body` bytes at most (a larger body is 413)."""
    doc = RouteDoc(method, path, summary, need, tag, body, query, response, status, list_response, idempotent,
                   content_type=content_type, also=also or {}, also_bodies=also_bodies or {},
                   accepts=list(content_types or []))
    if list_response and not (query and issubclass(query, ListQuery)):
        raise TypeError(f"{method} {path}: a list pages like every list (query=ListQuery or a subclass)")
    # Fields the answer shows but this body may not write: a 422 names them read-only rather than unknown.
    read_only = read_only_of(response, body) if body and response else frozenset()
    ROUTES.append(doc)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handler(**params: str) -> Response:
            request = bp.current_request
            try:
                principal = None
                if need != "public":
                    principal = verify_token(request.headers.get("authorization"))
                    telemetry.note(tenant=principal.tenant_id, principal=principal.kind, role=principal.role)
                    authorize(principal, need)
                else:
                    telemetry.note(principal="public")
                if any(len(value) > MAX_ID_LENGTH for value in params.values()):  # no such id can exist
                    raise NotFound(f"not found: ids are at most {MAX_ID_LENGTH} characters")
                if content_types and _media_type(request.headers.get("content-type")) not in content_types:
                    raise UnsupportedMediaType(
                        f"the body must be {' or '.join(content_types)}, not "
                        f"{request.headers.get('content-type') or 'without a Content-Type'}",
                        [{"field": "Content-Type", "message": f"must be one of {', '.join(content_types)}"}])
                if len(request.raw_body or b"") > max_body:
                    raise PayloadTooLarge(f"the body is larger than {max_body / 2 ** 20:g} MiB")
                ctx = Ctx(request, principal, doc)
                if idempotent and ctx.header("idempotency-key"):
                    return _idempotent(ctx, lambda: _run(view, ctx, params, status))
                return _run(view, ctx, params, status)
            except DomainError as exc:
                return errors.from_domain(exc)
            except ValidationError as exc:
                return errors.from_validation(exc, read_only)
            except Exception as exc:  # never a stack trace to the caller
                return errors.unexpected(exc)

        # Chalice keys views by name: derive a unique one from the route itself.
        handler.__name__ = re.sub(r"\W+", "_", f"{method}_{path}").strip("_").lower()
        # Other media types are refused by the handler, after authentication (Chalice's own check comes first).
        bp.route(path, methods=[method], content_types=["*/*"] if content_types else ["application/json"])(handler)
        return view

    return decorate


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def _run(view: Callable, ctx: Ctx, params: dict, status: int) -> Response:
    result = view(ctx, **params)
    return result if isinstance(result, Response) else json_response(result, status)


def _idempotent(ctx: Ctx, run: Callable[[], Response]) -> Response:
    """Same key, same tenant, within 24 h: answer the first response again and create nothing."""
    from chalicelib.tables.stores import Replay, holding

    key = ctx.header("idempotency-key") or ""
    if len(key) > 255:
        raise BadRequest("Idempotency-Key is longer than 255 characters",
                         [{"field": "Idempotency-Key", "message": "at most 255 characters"}])
    # The query is part of the request: a retry adding `?allow_duplicate=true` is another request, not a replay.
    query = sorted((ctx.request.query_params or {}).items())
    fingerprint = hashlib.sha256(f"{ctx.doc.method} {ctx.request.context.get('resourcePath', ctx.doc.path)} "
                                 f"{ctx.request.uri_params} {query} ".encode() + (ctx.request.raw_body or b"")
                                 ).hexdigest()
    store = ctx.stores().idempotency
    claim = store.claim(key, fingerprint)
    if isinstance(claim, Replay):
        return Response(body=claim.body, status_code=claim.status_code,
                        headers={"Content-Type": errors.JSON, "Idempotent-Replayed": "true"})
    try:
        with holding(claim):  # the request's transactions mark the key: a retry after a lost answer knows
            response = run()
    except BaseException:
        store.release(claim)  # never raises a storage failure: this error stays the answer
        raise
    if response.status_code >= 500:
        store.release(claim)
    else:
        store.complete(claim, response.status_code, response.body)
    return response
