"""One filter registry (domain/filters.py): the list, the export, the export's DynamoDB
query, the API's parameters and the OpenAPI document all read their dimensions from it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from chalicelib.api import schemas
from chalicelib.api.openapi import openapi_document
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import (
    BY_NAME,
    EXPORT_FILTERS,
    FILTER_DIMENSIONS,
    FILTERS,
    in_quality_range,
    matches_filters,
    validate_filters,
)
from chalicelib.domain.models import Conversation, ConversationStatus, Tier
from chalicelib.export.service import _matches as export_matches
from chalicelib.readmodel.listing import ConversationIndex, IndexedRow, ListQuery
from chalicelib.store.export_source import BASE_FIELDS, _condition


def conv(**kw: Any) -> Conversation:
    base: dict[str, Any] = {
        "tenant_id": "t1",
        "dataset_id": "d1",
        "conversation_id": "c1",
        "persona": "Ana",
        "emotion": "calm",
        "topic": "fees",
        "intent": "ask",
        "tone": "warm",
        "tier": Tier.SCENARIO,
        "status": ConversationStatus.APPROVED,
        "quality_score": 7.5,
    }
    for f in FILTERS:  # a value for every free-text dimension, listed above or not
        base.setdefault(f.name, f"some {f.name}")
    return Conversation(**(base | kw))


def test_every_dimension_is_a_conversation_field_and_a_record_attribute() -> None:
    from chalicelib.store.records import ConversationRecord

    attributes = ConversationRecord.get_attributes()
    for f in FILTERS:
        assert f.name in Conversation.model_fields, f
        assert f.record_attribute in attributes, f
    assert tuple(f.name for f in FILTERS) == FILTER_DIMENSIONS
    assert "status" in FILTER_DIMENSIONS and "status" not in {f.name for f in EXPORT_FILTERS}


def test_matching_is_any_of_within_a_dimension_and_all_dimensions() -> None:
    c = conv()
    assert matches_filters(c, {})
    assert matches_filters(c, {"persona": ["Ana", "Bo"], "tier": [Tier.SCENARIO]})
    assert matches_filters(c, {"tier": ["scenario"], "persona": []})  # empty: not asked
    assert not matches_filters(c, {"persona": ["Ana"], "tier": ["template"]})
    assert not matches_filters(c, {"status": ["generated"]})
    assert matches_filters(c, {"status": ["generated"]}, EXPORT_FILTERS)  # not an export one
    assert in_quality_range(7.5, 7.5, 7.5) and not in_quality_range(None, 0, None)
    assert not in_quality_range(7.5, None, 7.4) and in_quality_range(None, None, None)


def test_validation_names_what_is_allowed() -> None:
    validate_filters({"persona": ["anything, with a comma"], "tier": ["edge_case"]})
    with pytest.raises(ValidationError) as unknown:
        validate_filters({"colour": ["red"]})
    assert unknown.value.details == {"allowed": list(FILTER_DIMENSIONS)}
    with pytest.raises(ValidationError) as bad:
        validate_filters({"status": ["approved"], "tier": ["gold"]})
    assert bad.value.details == {
        "field": "tier",
        "value": "gold",
        "allowed": list(BY_NAME["tier"].choices or ()),
    }


def test_the_list_the_export_and_the_query_agree_on_every_dimension() -> None:
    """For each dimension: the list's matching, the export's re-check and the DynamoDB
    condition all select the conversation with its value and drop one without."""
    c = conv()
    index = ConversationIndex.__new__(ConversationIndex)
    row = IndexedRow.of(c, "")
    for f in FILTERS:
        mine, other = [f.value(c)], ["no-such-value"]
        assert ConversationIndex._matching([row], ListQuery(filters={f.name: mine})) == [row]
        assert ConversationIndex._matching([row], ListQuery(filters={f.name: other})) == []
        index.validate(ListQuery(filters={f.name: list(f.choices or mine)}))
        if f.exported:
            assert export_matches(c, {f.name: mine})
            assert not export_matches(c, {f.name: other})
            assert f.record_attribute in BASE_FIELDS  # read for the re-check
            names: dict[str, str] = {}
            values: dict[str, Any] = {}
            text = _condition({f.name: mine}).serialize(names, values)
            assert f"{names[f.record_attribute]} IN (" in text, text
            assert {"S": mine[0]} in values.values(), values


def test_the_api_and_openapi_take_every_dimension() -> None:
    spec = openapi_document()
    listing = {p["name"]: p for p in spec["paths"]["/api/conversations"]["get"]["parameters"]}
    preview = {p["name"] for p in spec["paths"]["/api/export/preview"]["get"]["parameters"]}
    for f in FILTERS:
        assert f.name in listing
        items = listing[f.name]["schema"]["items"]
        assert items.get("enum") == (list(f.choices) if f.choices else None)
        assert (f.name in preview) == f.exported
    # The export request's filters (api/schemas.py) take exactly the exported dimensions.
    fields = set(schemas.ExportFilters.model_fields) - {"dataset_id", "quality_min", "quality_max"}
    assert fields == {f.name for f in EXPORT_FILTERS}
    # A bulk action's filter ("select all matching") takes every list dimension.
    extra = {"dataset_id", "quality_min", "quality_max", "flagged", "q", "sort", "order"}
    assert set(schemas.BulkFilter.model_fields) - extra == set(FILTER_DIMENSIONS)


def test_a_dimension_added_to_the_registry_becomes_a_bulk_and_an_export_filter_field() -> None:
    from chalicelib.domain.filters import FilterDimension

    arc = FilterDimension("arc")
    speed = FilterDimension("speed", choices=("slow", "fast"))
    bulk = schemas.with_filter_dimensions("Bulk", schemas._BulkFilterBase, [arc, speed], False)
    export = schemas.with_filter_dimensions(
        "Export", schemas._ExportFiltersBase, [arc, speed], True
    )
    assert bulk.model_validate({"arc": ["calm to relieved"], "speed": ["fast"]})
    assert export.model_validate({"arc": ["calm to relieved"], "speed": ["slow"]})
    with pytest.raises(PydanticValidationError):
        export.model_validate({"speed": ["warp"]})  # an export checks a fixed set itself
    with pytest.raises(PydanticValidationError):
        bulk.model_validate({"nope": ["x"]})  # still strict: unknown fields are refused
