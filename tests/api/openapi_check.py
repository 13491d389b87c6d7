"""Checks an answer against the OpenAPI document: the route is documented, with this status and this body."""
from __future__ import annotations

import json
import re
from functools import cache
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker


@cache
def document() -> dict:
    """The service's own document, built once per test session (per worker)."""
    import app  # noqa: F401  (registers every route)
    from chalicelib.handlers.openapi import build_openapi

    return build_openapi()


@cache
def _templates() -> list[tuple[tuple[int, ...], re.Pattern, str]]:
    """(specificity, regex, template) per documented path; literal segments win over parameters, as in Chalice."""
    out = []
    for template in document()["paths"]:
        parts, rank = [], []
        for segment in template.strip("/").split("/"):
            if re.fullmatch(r"{\w+\+}", segment):
                parts.append(".+")
                rank.append(2)
            elif re.fullmatch(r"{\w+}", segment):
                parts.append("[^/]+")
                rank.append(1)
            else:
                parts.append(re.escape(segment))
                rank.append(0)
        out.append((tuple(rank), re.compile("/" + "/".join(parts)), template))
    return sorted(out, key=lambda t: (t[0], t[2]))


def template_of(path: str) -> str | None:
    """The documented path template a request path matches, or None."""
    path = urlsplit(path).path
    return next((template for _, regex, template in _templates() if regex.fullmatch(path)), None)


def _resolve(node: dict) -> dict:
    doc = document()
    while "$ref" in node and set(node) == {"$ref"} and not node["$ref"].startswith("#/components/schemas/"):
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


@cache
def _validator(template: str, method: str, status: str, media_type: str) -> Draft202012Validator:
    schema = _resolve(document()["paths"][template][method]["responses"][status])["content"][media_type]["schema"]
    return _validator_of(schema)


def _validator_of(schema: dict) -> Draft202012Validator:
    # `#/components/...` references resolve against a root that carries the document's components.
    root = {"allOf": [schema], "components": document()["components"]}
    return Draft202012Validator(root, format_checker=FormatChecker())


def problems(method: str, path: str, status: int, content_type: str | None, body: bytes | str | None) -> list[str]:
    """What is wrong with this answer by the document; empty when it agrees."""
    where = f"{method} {path} -> {status}"
    if method.upper() == "OPTIONS":
        return []  # a CORS preflight is the gateway's answer, not an operation of the API
    template = template_of(path)
    operation = document()["paths"][template].get(method.lower()) if template else None
    if operation is None:  # no such route: the gateway's 404, or 405 for a method the path does not take
        wanted = 405 if template else 404
        if status != wanted:
            return [f"{where}: {method} {template or path} is not documented, so the answer must be {wanted}"]
        return _body_problems(where, _validator_of({"$ref": "#/components/schemas/Error"}), content_type, body)
    response = operation["responses"].get(str(status))
    if response is None:
        return [f"{where}: status {status} is not documented for {method} {template} "
                f"(documented: {', '.join(operation['responses'])})"]
    content = _resolve(response).get("content")
    if not content:
        return [] if not body else [f"{where}: answered a body where the document says there is none"]
    media_type = (content_type or "").split(";")[0].strip()
    if media_type not in content:
        return [f"{where}: content type {content_type!r} is not documented (documented: {', '.join(content)})"]
    if media_type != "application/json":
        return _text_problems(where, content_type, body)
    return _body_problems(where, _validator(template, method.lower(), str(status), media_type), content_type, body)


def _text_problems(where: str, content_type: str | None, body: bytes | str | None) -> list[str]:
    """A documented non-JSON answer (CSV, HTML): text in the charset its Content-Type names (UTF-8 by default)."""
    charset = re.search(r"charset=([\w-]+)", content_type or "", re.IGNORECASE)
    data = body.encode() if isinstance(body, str) else (body or b"")
    try:
        data.decode(charset.group(1) if charset else "utf-8")
    except (UnicodeDecodeError, LookupError):
        return [f"{where}: the body is not text in the charset of {content_type!r}"]
    return []


def _body_problems(where: str, validator: Draft202012Validator, content_type: str | None,
                   body: bytes | str | None) -> list[str]:
    if not (content_type or "").startswith("application/json"):
        return [f"{where}: content type {content_type!r} where JSON is documented"]
    try:
        data = json.loads(body or b"")
    except ValueError:
        return [f"{where}: the body is not JSON"]
    return [f"{where}: {'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))][:10]
