"""Planning: taxonomy and chunk imports, dataset plans, coverage, sample data, seed templates.

Pure Python (no AWS imports), so services, workflows and the local launcher can all use it.
"""

from __future__ import annotations

from chalicelib.planning.coverage import analyze_coverage, plan_gap_fill
from chalicelib.planning.imports import (
    parse_chunks_csv,
    parse_chunks_json,
    parse_chunks_payload,
    parse_taxonomy,
)
from chalicelib.planning.planner import (
    ARCS,
    EDGE_CASE_TYPES,
    pair_coverage,
    plan_conversations,
)
from chalicelib.planning.sample_data import load_sample_dataset
from chalicelib.planning.seed_templates import (
    DEFAULT_SYSTEM_PROMPT,
    SEED_TEMPLATES,
    seed_prompt_templates,
)

__all__ = [
    "ARCS",
    "DEFAULT_SYSTEM_PROMPT",
    "EDGE_CASE_TYPES",
    "SEED_TEMPLATES",
    "analyze_coverage",
    "load_sample_dataset",
    "pair_coverage",
    "parse_chunks_csv",
    "parse_chunks_json",
    "parse_chunks_payload",
    "parse_taxonomy",
    "plan_conversations",
    "plan_gap_fill",
    "seed_prompt_templates",
]
