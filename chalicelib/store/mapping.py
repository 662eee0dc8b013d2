"""Record <-> domain conversion, generic over attribute names (keeps records declarative)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel
from pynamodb.attributes import JSONAttribute
from pynamodb.models import Model

D = TypeVar("D", bound=BaseModel)
R = TypeVar("R", bound=Model)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def record_from_domain(record_cls: type[R], model: BaseModel, **extra: Any) -> R:
    attrs = record_cls.get_attributes()
    values: dict[str, Any] = {}
    for name, attr in attrs.items():
        if name in extra:
            values[name] = extra[name]
        elif hasattr(model, name):
            value = getattr(model, name)
            if isinstance(attr, JSONAttribute) or not isinstance(value, datetime):
                value = _plain(value)
            values[name] = value
    return record_cls(**values)


def domain_from_record(model_cls: type[D], record: Model, **extra: Any) -> D:
    data: dict[str, Any] = {}
    for name in record.get_attributes():
        value = getattr(record, name, None)
        if value is not None:
            data[name] = value
    data.update(extra)
    return model_cls.model_validate(data)


def doc_of(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
