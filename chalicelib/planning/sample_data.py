"""The shipped sample dataset (Harbor & Pine Financial Advisors, a fictional firm).

It lets a new user plan and generate a dataset before uploading their own taxonomy and
chunks, and gives tests and benchmarks a realistic fixture. The JSON goes through the
same parsers as an upload, so the sample can never drift from what an import accepts.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalicelib.domain.models import Chunk, Taxonomy
from chalicelib.planning.imports import parse_chunks_json, parse_taxonomy

# A path relative to this file: chalicelib/ is copied whole into the Lambda bundle, and
# chalicelib/data is not a package that importlib.resources could address.
SAMPLE_DATASET_PATH = Path(__file__).resolve().parent.parent / "data" / "sample_dataset.json"


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE_DATASET_PATH.read_text(encoding="utf-8"))
    return data


def load_sample_dataset() -> tuple[Taxonomy, list[Chunk], dict[str, Any]]:
    """``(taxonomy, chunks, info)``; ``info`` has ``name``, ``description``,
    ``business_name``, ``target_count``, ``tier_distribution`` and ``suggested_budget_usd``.
    Fresh objects on every call, so callers may mutate them."""
    raw = _raw()
    taxonomy = parse_taxonomy(raw["taxonomy"])
    chunks = parse_chunks_json(raw["chunks"], taxonomy)
    return taxonomy, chunks, dict(raw["dataset"])
