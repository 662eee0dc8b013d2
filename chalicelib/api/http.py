"""HTTP glue for thin handlers: body parsing, errors -> responses, serialisation."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import pydantic
from chalice import Response

from chalicelib.domain.errors import (
    DomainError,
    PayloadTooLargeError,
    RateLimitedError,
    ValidationError,
)
from chalicelib.domain.json_limits import MAX_JSON_DEPTH, loads_bounded

log = logging.getLogger(__name__)
M = TypeVar("M", bound=pydantic.BaseModel)

# nosniff: a browser never reads a JSON body (which may quote model output verbatim,
# "<script>" and all) as HTML.
JSON_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(
        body=json.dumps(body, default=_json_default),
        status_code=status,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def domain_error_response(e: DomainError) -> Response:
    headers = {}
    if isinstance(e, RateLimitedError):
        headers["Retry-After"] = str(max(1, round(e.retry_after)))
    return error_response(e.status_code, e.code, e.message, e.details, headers)


def _pydantic_details(e: pydantic.ValidationError) -> dict[str, Any]:
    return {
        "errors": [
            {
                "field": ".".join(str(p) for p in err["loc"]) or "(body)",
                "error": err["msg"],
                "type": err["type"],
            }
            for err in e.errors(include_url=False, include_input=False)
        ]
    }


def _json_default(value: Any) -> Any:
    """Datetimes inside plain dicts serialise like pydantic's (ISO 8601, 'T')."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    """Nothing in this API (money, weights, ratios, scores) is smaller than 1e-100 but
    not 0, and DynamoDB cannot store such numbers (its exponents stop at -130)."""
    value = float(text)
    if value != 0 and abs(value) < 1e-100:
        raise ValueError(f"{text}: numbers other than 0 must be at least 1e-100 in size")
    return value


def json_body(raw: bytes | None, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The body as JSON: at most ``max_bytes`` (413), well-formed, finite numbers, real
    text and at most ``max_depth`` levels deep (400s in the error shape)."""
    if raw is not None and len(raw) > max_bytes:
        raise PayloadTooLargeError(
            f"request body is {len(raw)} bytes; the limit is {max_bytes}", {"limit": max_bytes}
        )
    if not raw:
        raise ValidationError("a JSON request body is required")
    try:
        # NaN and Infinity are Python's extensions, not JSON: refused like any typo.
        data = loads_bounded(raw, max_depth, parse_constant=_no_constants, parse_float=_parse_float)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValidationError(f"malformed JSON: {e}", {"code": "malformed_json"}) from e
    try:
        # "\ud800" alone is valid JSON but no text: it cannot be stored or sent on.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValidationError(
            "the request holds an unpaired surrogate escape (not valid text)",
            {"code": "invalid_text"},
        ) from e
    return data


def parse_model(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise ValidationError("the request body must be a JSON object")
    try:
        # Strict JSON validation: types as the OpenAPI document states them ("5" is not
        # a number, true is not 1), enums from their JSON strings.
        return model.model_validate_json(json.dumps(data), strict=True)
    except pydantic.ValidationError as e:
        raise ValidationError("the request body is not valid", _pydantic_details(e)) from e


def dump(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(dump(body), default=_json_default),
        status_code=status,
        headers={**JSON_HEADERS, **(headers or {})},
    )


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Maps domain errors to the API error shape; an unexpected error is a logged 500."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as e:
            return domain_error_response(e)
        except pydantic.ValidationError as e:
            return error_response(400, "validation_error", "invalid input", _pydantic_details(e))
        except Exception:
            log.exception("unhandled error in %s", fn.__name__)
            return error_response(
                500, "internal_error", "an unexpected error occurred; it has been logged"
            )

    return wrapper


def query_list(params: Any, name: str) -> list[str]:
    if not params:
        return []
    if hasattr(params, "getlist"):
        values = params.getlist(name) if name in params else []
    else:
        values = [params.get(name)]
    out: list[str] = []
    for v in values:
        if v is None:
            continue
        out.extend(part for part in str(v).split(",") if part != "")
    return out


def query_values(params: Any, name: str) -> list[str]:
    """Every value of a repeatable parameter, verbatim (no splitting on commas)."""
    if not params:
        return []
    if hasattr(params, "getlist"):
        values = params.getlist(name) if name in params else []
    else:
        values = [params.get(name)]
    return [str(v) for v in values if v is not None and str(v) != ""]


def query_one(params: Any, name: str) -> str | None:
    """The (last) value of a parameter, verbatim: ``q=a, b`` searches for ``a, b``."""
    values = query_values(params, name)
    return values[-1] if values else None


def query_raw(params: Any, name: str) -> str | None:
    """The (last) value of a parameter as sent: ``?page=`` is ``""``, which is not a
    number, a boolean or an enum value (a 400, not a silent default)."""
    if not params:
        return None
    if hasattr(params, "getlist"):
        values = params.getlist(name) if name in params else []
    else:
        values = [params.get(name)]
    present = [str(v) for v in values if v is not None]
    return present[-1] if present else None


def query_float(params: Any, name: str) -> float | None:
    value = query_raw(params, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError as e:
        raise ValidationError(f"{name} must be a number", {"field": name}) from e
    if number != number or number in (float("inf"), float("-inf")):
        raise ValidationError(f"{name} must be a finite number", {"field": name})
    return number


def query_int(params: Any, name: str, default: int) -> int:
    value = query_raw(params, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as e:
        raise ValidationError(f"{name} must be an integer", {"field": name}) from e


def query_bool(params: Any, name: str) -> bool | None:
    value = query_raw(params, name)
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValidationError(f"{name} must be true or false", {"field": name})
