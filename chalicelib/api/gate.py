"""What every HTTP request passes before its route runs (a Chalice ``http`` middleware).

1. **Authentication first.** Every route except those ``ROUTES`` marks public (health,
   the OpenAPI document, sign-in) verifies the caller's token before anything reads the
   request's path ids, parameters or body. An anonymous caller therefore learns nothing
   about its input: it gets a 401, never a 400, 404, 405, 413 or 415 first. A route that
   ``ROUTES`` does not list is authenticated too (the safe default).
2. **Declared choices.** Every query parameter that the OpenAPI document declares as an
   enum (or as an array of enum values) must hold one of those values. Otherwise the
   answer is a 400 that names the parameter and the allowed values, never an empty
   list. A new enum parameter in ``ROUTES`` is enforced without touching its route.

The principal verified here is handed to the route through :func:`request_principal`,
so a token is verified once per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.api.auth import Principal, authenticate
from chalicelib.api.http import domain_error_response, error_response
from chalicelib.api.openapi import ROUTES, Route
from chalicelib.domain.errors import DomainError, ValidationError

log = logging.getLogger(__name__)

_ROUTES: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}
_principal: ContextVar[Principal | None] = ContextVar("request_principal", default=None)


def is_public(method: str, resource_path: str) -> bool:
    route = _ROUTES.get((method.upper(), resource_path))
    return route is not None and route.public


def request_principal(headers: Mapping[str, str]) -> Principal:
    """The caller of the request being handled: the one the gate verified, else (a
    route called without the gate, e.g. directly in a test) verified now."""
    who = _principal.get()
    return who if who is not None else authenticate(headers)


def enum_choices(route: Route) -> Iterator[tuple[str, list[Any], bool, str]]:
    """(name, allowed values, is an array, item type) of each enum query parameter."""
    for name, schema, _required in route.query:
        is_array = schema.get("type") == "array"
        item = schema.get("items", {}) if is_array else schema
        if "enum" in item:
            yield name, list(item["enum"]), is_array, str(item.get("type", "string"))


def _sent_values(params: Any, name: str, is_array: bool) -> list[str]:
    if not params or name not in params:
        return []
    values = [str(v) for v in params.getlist(name)] if hasattr(params, "getlist") else []
    if not values and params.get(name) is not None:
        values = [str(params.get(name))]
    if is_array:
        # Arrays of choices also accept "a,b" (no choice holds a comma); an empty
        # element filters nothing, as in the routes.
        return [part for v in values for part in v.split(",") if part != ""]
    return values  # a scalar sent empty is a value, and not one of the choices


def _is_choice(value: str, allowed: list[Any], item_type: str) -> bool:
    if item_type == "integer":
        try:
            return int(value) in allowed
        except ValueError:
            return False
    return value in {str(a) for a in allowed}


def check_choices(route: Route, params: Any) -> None:
    for name, allowed, is_array, item_type in enum_choices(route):
        for value in _sent_values(params, name, is_array):
            if not _is_choice(value, allowed, item_type):
                shown = value if len(value) <= 80 else value[:80] + "..."
                raise ValidationError(
                    f"unknown {name} '{shown}': {name} must be one of "
                    + ", ".join(str(a) for a in allowed),
                    {"field": name, "value": shown, "allowed": allowed},
                )


def request_gate(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """The middleware: authenticate unless public, check the declared choices, then
    run the route with the verified principal bound for it."""
    token = None
    try:
        try:
            route = _ROUTES.get((request.method.upper(), request.path))
            if route is None or not route.public:
                token = _principal.set(authenticate(request.headers))
            if route is not None:
                check_choices(route, request.query_params)
        except DomainError as e:
            return domain_error_response(e)
        except Exception:
            log.exception("unhandled error before %s %s", request.method, request.path)
            return error_response(
                500, "internal_error", "an unexpected error occurred; it has been logged"
            )
        return get_response(request)
    finally:
        if token is not None:
            _principal.reset(token)
