"""Reading a JSON request body: one rule for every route of both services that takes one.

Checked after the token, in this order:

* a body whose Content-Type is not JSON (``application/json`` or ``application/*+json``,
  parameters such as ``charset`` allowed) is a 415 ``unsupported_media_type``, and so is a
  body with no Content-Type at all. RFC 9110 (8.3) lets a recipient treat an unlabelled
  body as ``application/octet-stream``; guessing instead would accept curl's default
  ``--data`` label (``application/x-www-form-urlencoded``) on some routes and not on
  others, which is how the routes came to differ. A request without a body (Content-Length
  0, or neither Content-Length nor Transfer-Encoding) needs no Content-Type; one with both
  headers is a 400 (RFC 9112 6.1), and a chunked body is a body;
* over the size limit is a 413, also when streamed without Content-Length;
* a body that does not parse is a 400 ``malformed_json`` with the parser's position (for
  a body that is not UTF-8, the first bad byte's). One UTF-8 byte order mark at the start
  is dropped first.

Routes read their bodies here rather than through a FastAPI body parameter, which
answers the same mistakes with 422s of another shape, and before the token is checked.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers

from services.http.errors import ApiError
from services.http.openapi import Responses, error
from streams.events import utf8_problem, without_bom

#: What a JSON-body route may answer whatever it does with the body.
BODY_ERRORS: Responses = {
    **error(400, "Body is not valid JSON (malformed_json, with the position), or not a "
                 "JSON object (bad_request)."),
    **error(413, "Request body over the size limit."),
    **error(415, "Body not sent as Content-Type: application/json."),
}

M = TypeVar("M", bound=BaseModel)


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or a structured ``application/*+json`` type, any parameters."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or (sub.endswith("+json") and sub != "+json"))


def has_body(headers: Headers) -> bool:
    """Whether the request carries a body (RFC 9112 6.3: Transfer-Encoding overrides
    Content-Length; without either it has none)."""
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length")
    return length is not None and length.strip() != "0"


def check_framing(headers: Headers) -> None:
    """400 for a request with both Transfer-Encoding and Content-Length: RFC 9112 (6.1)
    lets a server refuse it, and should, since two parsers that each pick one header
    (a proxy, then this service) disagree on where the body ends (request smuggling), and
    a "Content-Length: 0" beside a chunked body would slip past the Content-Type rule."""
    if "transfer-encoding" in headers and "content-length" in headers:
        raise ApiError(400, "bad_request", "the request has both Transfer-Encoding and "
                                           "Content-Length; send one of them")


def check_json_content_type(request: Request) -> None:
    """415 unless a body is labelled as JSON (a request without a body passes)."""
    check_framing(request.headers)
    if not has_body(request.headers):
        return
    content_type = request.headers.get("content-type")
    if is_json_media_type(content_type):
        return
    sent = f"Content-Type {content_type[:100]!r}" if content_type else "no Content-Type"
    raise ApiError(415, "unsupported_media_type",
                   f"the body must be JSON sent with Content-Type: application/json (this "
                   f"request has {sent}); with curl: -H 'Content-Type: application/json'")


async def read_body(request: Request, limit: int, too_large_hint: str = "") -> bytes:
    """The raw body, at most ``limit`` bytes (413 otherwise, before reading it when the
    Content-Length says so)."""
    hint = f"; {too_large_hint}" if too_large_hint else ""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length") from None
        if too_big:
            raise ApiError(413, "too_large", f"request body of {declared} bytes is over the "
                                             f"{limit}-byte limit{hint}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"request body is over the {limit}-byte "
                                             f"limit{hint}")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """``body`` parsed, less one leading UTF-8 BOM (:func:`streams.events.without_bom`).

    A body that is not UTF-8 is named as ``packloop emit`` names such a line, with the
    first bad byte's position in the body as sent (orjson's own words, ``str is not valid
    UTF-8: surrogates not allowed``, give none)."""
    try:
        return orjson.loads(without_bom(body))
    except orjson.JSONDecodeError as exc:
        invalid = utf8_problem(body)
        if invalid is not None:
            raise ApiError(400, "malformed_json", f"body is {invalid.reason}") from None
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None


async def read_json(request: Request, limit: int, too_large_hint: str = "", *,
                    optional: bool = False) -> tuple[bytes, Any]:
    """The body as received (less one leading UTF-8 BOM, which Windows tools write:
    :func:`streams.events.without_bom`) and as parsed, by the rule of this module; an
    ``optional`` body that is empty parses as None (JSON null)."""
    check_json_content_type(request)
    received = await read_body(request, limit, too_large_hint)
    body = without_bom(received)
    if optional and not body:
        return body, None
    return body, parse_json(received)


def validate_body(model: type[M], data: Any) -> M:
    """``data`` as ``model``: a JSON value that is not an object is a 400 (as for every
    body here), an invalid field a 422 naming it as ``body.<field>``."""
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["body", *(str(p) for p in first["loc"])])
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}") from None
