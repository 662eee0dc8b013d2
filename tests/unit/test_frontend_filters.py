"""The web app's filter list is generated from the OpenAPI document (infra/frontend_filters.py)."""

from __future__ import annotations

import copy

from chalicelib.api.openapi import openapi_document
from infra.frontend_filters import OUTPUT, list_filters, render


def test_the_committed_filter_list_is_the_one_the_api_describes() -> None:
    assert OUTPUT.read_text() == render(), "run python -m infra.frontend_filters"


def test_a_filter_added_to_the_api_reaches_the_generated_list() -> None:
    document = copy.deepcopy(openapi_document())
    parameters = document["paths"]["/api/conversations"]["get"]["parameters"]
    parameters.append(
        {
            "name": "arc",
            "in": "query",
            "schema": {"type": "array", "items": {"type": "string"}, "x-filter": True},
        }
    )
    parameters.append(
        {
            "name": "region",
            "in": "query",
            "schema": {
                "type": "array",
                "items": {"type": "string"},
                "x-filter": True,
                "x-taxonomy-field": "regions",
            },
        }
    )
    text = render(document)
    assert '"status", "arc", "region"] as const' in text
    assert '"tone", "region"] as const' in text  # a taxonomy filter
    assert '"region": "regions"' in text
    assert "arc" not in text.split("TAXONOMY_FILTERS")[1]  # free text, not from the taxonomy


def test_only_the_list_s_filters_are_taken() -> None:
    names = [p["name"] for p in list_filters(openapi_document())]
    assert names == ["persona", "emotion", "topic", "intent", "tone", "tier", "status"]
