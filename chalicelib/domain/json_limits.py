"""How deep a JSON document from outside may nest, checked without recursion.

No request of this API nests deeper than a few levels (a taxonomy entry is 3). The limit
keeps every later step (pydantic, ``json.dumps``, DynamoDB's 32-level documents) far from
its own recursion limit, so a deep document is a 400, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import ValidationError

MAX_JSON_DEPTH = 16


def too_deep(max_depth: int = MAX_JSON_DEPTH) -> ValidationError:
    return ValidationError(
        f"the JSON nests deeper than {max_depth} levels",
        {"code": "too_deep", "max_depth": max_depth},
    )


def json_depth_exceeds(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects nest more than ``max_depth`` levels (``{}`` is 1), without
    recursion: the check must not fail the way it guards against."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads_bounded(
    text: str | bytes,
    max_depth: int = MAX_JSON_DEPTH,
    parse_constant: Callable[[str], Any] | None = None,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """``json.loads`` that raises :func:`too_deep` for a document nested beyond
    ``max_depth`` (also when the parser itself hits the interpreter's recursion limit,
    at about 1,000 levels). Malformed JSON raises ``ValueError`` as ``json.loads`` does."""
    try:
        data = json.loads(text, parse_constant=parse_constant, parse_float=parse_float)
    except RecursionError as e:
        raise too_deep(max_depth) from e
    if json_depth_exceeds(data, max_depth):
        raise too_deep(max_depth)
    return data
