"""The request being handled, read the same way by every blueprint: its principal, its
JSON body checked against a schema, its query parameters and the list's query."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Chalice
from chalice.app import Request

from chalicelib.api import schemas as s
from chalicelib.api.auth import Principal
from chalicelib.api.gate import request_principal
from chalicelib.api.http import (
    json_body,
    parse_model,
    query_bool,
    query_float,
    query_int,
    query_list,
    query_one,
    query_raw,
    query_values,
)
from chalicelib.config import get_settings
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import BY_NAME, FILTER_DIMENSIONS
from chalicelib.readmodel.listing import ListQuery, default_order

JSON = ["application/json"]
JSON_OR_TEXT = ["application/json", "text/csv", "text/plain"]

if TYPE_CHECKING:  # the routes use the services, never import their wiring
    from chalicelib.bootstrap import Container

_app: Chalice | None = None
_container: Callable[[], Container] | None = None


def bind(app: Chalice, container: Callable[[], Container]) -> None:
    """The app whose current request the helpers read, and where the services come
    from (set once, by app.py: the composition root)."""
    global _app, _container
    _app = app
    _container = container


def services() -> Container:
    """The process's services (built on first use)."""
    assert _container is not None, "app.py binds the container before any route runs"
    return _container()


def current() -> Request:
    request = _app.current_request if _app is not None else None
    assert request is not None, "only called while handling a request"
    return request


def raw_body() -> bytes:
    raw = current().raw_body
    return raw.encode() if isinstance(raw, str) else bytes(raw or b"")


def principal() -> Principal:
    return request_principal(current().headers)


def body(model: type[s.BaseModel]) -> Any:
    return parse_model(model, json_body(raw_body(), get_settings().max_body_bytes))


def json_document() -> Any:
    """The body as JSON of any shape (the service validates it)."""
    return json_body(raw_body(), get_settings().max_body_bytes)


def params() -> Any:
    return current().query_params or {}


def param(name: str) -> str | None:
    return query_one(params(), name)


def required_param(name: str) -> str:
    value = param(name)
    if not value:
        raise ValidationError(f"{name} is required", {"field": name})
    return value


def filter_values(p: Any, dim: str) -> list[str]:
    """Repeated values of a filter. Taxonomy names are taken verbatim (a name may hold
    a comma); tier and status also accept ``a,b``."""
    return query_list(p, dim) if BY_NAME[dim].choices is not None else query_values(p, dim)


def default_if_absent(value: str | None, default: str) -> str:
    """A parameter sent empty is a value (and invalid for a choice), not an absence."""
    return default if value is None else value


def list_query() -> ListQuery:
    p = params()
    return ListQuery(
        dataset_id=query_one(p, "dataset_id"),
        filters={dim: values for dim in FILTER_DIMENSIONS if (values := filter_values(p, dim))},
        quality_min=query_float(p, "quality_min"),
        quality_max=query_float(p, "quality_max"),
        flagged=query_bool(p, "flagged"),
        q=query_one(p, "q"),
        sort=(sort := default_if_absent(query_raw(p, "sort"), "created_at")),
        order=default_if_absent(query_raw(p, "order"), default_order(sort)),
        page_size=query_int(p, "page_size", 25),
        page=query_int(p, "page", 1),
        cursor=query_one(p, "cursor"),
    )


def bulk_filter_query(f: s.BulkFilter) -> ListQuery:
    """A bulk call's filter as the list's query (same fields, same validation)."""
    return ListQuery(
        dataset_id=f.dataset_id,
        filters={dim: values for dim in FILTER_DIMENSIONS if (values := getattr(f, dim))},
        quality_min=f.quality_min,
        quality_max=f.quality_max,
        flagged=f.flagged,
        q=f.q,
        sort=f.sort,
        order=f.order or default_order(f.sort),
    )


def path_number(value: str, name: str, upper: int) -> int:
    """A positive integer path segment (a version or turn number) below ``upper``."""
    if not value.isdigit() or not 0 < int(value) < upper:
        raise ValidationError(f"{name} must be a positive integer", {"field": name})
    return int(value)
